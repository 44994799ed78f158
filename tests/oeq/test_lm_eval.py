"""lm-eval runs of the OEQ tasks on the French fixture, with a tiny model that has learnt two answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from lm_eval_medinj.oeq.bertscore import BertScoreSettings, bertscore
from lm_eval_medinj.oeq.bleu import corpus_bleu, signature
from lm_eval_medinj.oeq.lengths import answer_lengths
from lm_eval_medinj.oeq.rouge import rouge
from lm_eval_medinj.oeq.task import METRICS
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.prompts import CANONICAL_SECTION_STARTS
from tests.oeq.conftest import ANSWERED

pytestmark = pytest.mark.slow


def _run(task: str, model_dir: Path, metadata: dict[str, Any], out: Path, *extra: str) -> tuple[dict, list[dict]]:
    """One lm-eval CLI run; its results file and the logged samples of ``medinj_oeq_native``."""
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--include_path",
        str(tasks_path()),
        "--tasks",
        task,
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir},dtype=float32",
        "--metadata",
        json.dumps(metadata),
        "--limit",
        str(ANSWERED),
        "--log_samples",
        "--output_path",
        str(out),
        *extra,
    ]
    process = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    (results_file,) = out.glob("*/results_*.json")
    (samples_file,) = out.glob("*/samples_medinj_oeq_native_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines()]
    return json.loads(results_file.read_text(encoding="utf-8")), sorted(samples, key=lambda s: s["doc_id"])


def _metadata(oeq_data_dir: Path, tiny_encoder_dir: Path) -> dict[str, Any]:
    return {
        "data_dir": str(oeq_data_dir),
        "bertscore_model": str(tiny_encoder_dir),
        "bertscore_layer": 2,
        "bertscore_rescale": False,
    }


def test_medinj_oeq_group_reports_every_metric_and_stops_at_the_next_question(
    answering_model_dir: Path,
    oeq_data_dir: Path,
    tiny_encoder_dir: Path,
    learnt_answers: dict[str, str],
    tmp_path: Path,
) -> None:
    metadata = {**_metadata(oeq_data_dir, tiny_encoder_dir), "prompt": "canonical"}
    results, samples = _run("medinj_oeq", answering_model_dir, metadata, tmp_path)
    # Without a chat template the canonical prompt ends with the answer cue; the model goes on
    # with "\n\nQuestion : ...", where generation of an answer to a canonical prompt stops.
    answers = [sample["resps"][0][0] for sample in samples]
    prompts = [sample["arguments"]["gen_args_0"]["arg_0"] for sample in samples]
    assert prompts == list(learnt_answers)
    assert [answer.strip() for answer in answers] == list(learnt_answers.values())
    assert all(sample["doc"]["prompt_source"] == "canonical" for sample in samples)
    stops = samples[0]["arguments"]["gen_args_0"]["arg_1"]["until"]
    assert set(stops) == set(CANONICAL_SECTION_STARTS)

    config = results["configs"]["medinj_oeq_native"]
    assert config["generation_kwargs"]["max_gen_toks"] == 512
    assert config["metadata"]["sacrebleu_signature"] == signature("intl")
    encoder = BertScoreSettings(model=str(tiny_encoder_dir), layer=2, rescale=False)
    assert config["metadata"]["bertscore_signature"] == encoder.signature

    pairs = [(sample["target"], answer.strip()) for sample, answer in zip(samples, answers, strict=True)]
    for sample, (reference, answer) in zip(samples, pairs, strict=True):
        assert {name: sample[name] for name in ("rouge1", "rouge2", "rougeL")} == rouge(reference, answer)
        assert {name: sample[name] for name in ("answer_chars", "answer_words")} == answer_lengths(answer)
    for task in ("medinj_oeq_native", "medinj_oeq"):
        assert {f"{name},none" for name in METRICS} <= set(results["results"][task])
    native = results["results"]["medinj_oeq_native"]
    assert native["bleu,none"] == pytest.approx(corpus_bleu(pairs).score)
    references, predictions = zip(*pairs, strict=True)
    assert native["bertscore,none"] == pytest.approx(sum(bertscore(references, predictions, encoder)) / ANSWERED)
    assert 0 < native["rougeL,none"] < 1


def test_the_default_prompt_is_the_records_own_conversation_and_stops_at_the_end_of_sequence(
    answering_model_dir: Path,
    oeq_data_dir: Path,
    tiny_encoder_dir: Path,
    learnt_chat_answers: dict[str, str],
    tmp_path: Path,
) -> None:
    _, samples = _run(
        "medinj_oeq_native",
        answering_model_dir,
        _metadata(oeq_data_dir, tiny_encoder_dir),
        tmp_path,
        "--apply_chat_template",
    )
    # The paper's prompt: the record's non-assistant turns (here a system and a user turn),
    # verbatim, through the model's chat template with the generation prompt.
    records = json.loads((oeq_data_dir / "Native" / "Test" / "oeq" / "oeq_test.json").read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(answering_model_dir)
    expected = [
        tokenizer.apply_chat_template(
            [turn for turn in record["messages"] if turn["role"] != "assistant"],
            tokenize=False,
            add_generation_prompt=True,
        )
        for record in records[:ANSWERED]
    ]
    assert [record["messages"][0]["role"] for record in records[:ANSWERED]] == ["system"] * ANSWERED
    prompts = [sample["arguments"]["gen_args_0"]["arg_0"] for sample in samples]
    assert prompts == expected == list(learnt_chat_answers)
    assert all(sample["doc"]["prompt_source"] == "conversation" for sample in samples)
    gen_kwargs = samples[0]["arguments"]["gen_args_0"]["arg_1"]
    assert (gen_kwargs["until"], gen_kwargs["max_gen_toks"], gen_kwargs["do_sample"]) == ([], 512, False)
    # The model ends its turn with <|im_end|> (its end of sequence), then would go on with
    # "\n\nQuestion : ...": only the end of sequence stops it, as in the authors' generation.
    assert [sample["resps"][0][0] for sample in samples] == list(learnt_chat_answers.values())
