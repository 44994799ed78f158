"""The real ``lm_eval`` and ``medinj eval`` commands on a tiny random model, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.mcq.metrics import exact_match, hamming_score
from lm_eval_medinj.mcq.task import doc_to_choice
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol.paper import parse_authors_answer
from lm_eval_medinj.protocol.strict import parse_answer

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def results_and_samples(output: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    (results_file,) = output.rglob("results_*.json")
    samples = {
        path.name.removeprefix("samples_").rsplit("_", 1)[0]: [json.loads(line) for line in path.open()]
        for path in output.rglob("samples_*.jsonl")
    }
    return json.loads(results_file.read_text())["results"], samples


def model_args(model_dir: Path) -> str:
    return f"pretrained={model_dir},dtype=float32"


def test_lm_eval_frenchmedmcqa_choice_and_greedy(tmp_path: Path, tiny_model_dir: Path, frenchmedmcqa_dir: Path) -> None:
    output = tmp_path / "out"
    completed = run(
        [
            str(BIN / "lm_eval"),
            "--include_path",
            str(tasks_path()),
            "--tasks",
            "medinj_frenchmedmcqa,medinj_frenchmedmcqa_greedy",
            "--model",
            "hf",
            "--model_args",
            model_args(tiny_model_dir),
            "--metadata",
            json.dumps({"data_dir": str(frenchmedmcqa_dir)}),
            "--limit",
            "6",
            "--log_samples",
            "--output_path",
            str(output),
        ],
        tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results, samples = results_and_samples(output)

    for mode in ("", "_greedy"):
        mcqu, mcq = results[f"medinj_frenchmedmcqa_mcqu{mode}"], results[f"medinj_frenchmedmcqa_mcq{mode}"]
        assert "em,none" in mcqu and "hamming,none" not in mcqu
        assert {"em,none", "hamming,none"} <= set(mcq)
        group = results[f"medinj_frenchmedmcqa{mode}"]
        assert group["em,none"] == pytest.approx((mcqu["em,none"] + mcq["em,none"]) / 2)
        assert group["hamming,none"] == pytest.approx(mcq["hamming,none"])

    for task, task_samples in samples.items():
        assert len(task_samples) == 6
        em_values = []
        for sample in task_samples:
            doc = sample["doc"]
            if task.endswith("_greedy"):  # the authors' parse, the default protocol
                multi = doc["task"] == "mcq"
                predicted = parse_authors_answer(sample["filtered_resps"][0], doc["option_letters"], multi)
            else:
                loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
                best = doc_to_choice(doc)[loglikelihoods.index(max(loglikelihoods))]
                predicted = parse_answer(best, doc["option_letters"])
            assert sample["em"] == exact_match(doc["gold"], predicted)
            if doc["task"] == "mcq":
                assert sample["hamming"] == pytest.approx(hamming_score(doc["gold"], predicted))
            em_values.append(sample["em"])
        assert results[task]["em,none"] == pytest.approx(sum(em_values) / len(em_values))


def test_medinj_eval_with_chat_template_and_fewshot(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    output = tmp_path / "out"
    completed = run(
        [
            str(BIN / "medinj"),
            "eval",
            "--tasks",
            "medinj_mcq",
            "--model",
            "hf",
            "--model_args",
            model_args(tiny_model_dir),
            "--metadata",
            json.dumps({"data_dir": str(demo_data_dir)}),
            "--apply_chat_template",
            "--num_fewshot",
            "1",
            "--limit",
            "2",
            "--log_samples",
            "--output_path",
            str(output),
        ],
        tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results, samples = results_and_samples(output)
    assert {"medinj_mcq", "medinj_mcqu_all", "medinj_mcq_all"} <= set(results)
    context = samples["medinj_mcq_all"][0]["arguments"]["gen_args_0"]["arg_0"]
    # The record's system turn, one few-shot example (its user turn, its own answer), then the question.
    assert context.startswith("<|im_start|>system\n") and context.count("<|im_start|>user") == 2
    shot_answer = context.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert parse_answer(shot_answer, "ABCDE") is not None and ", " in shot_answer
    assert context.count("<|im_start|>assistant") == 2 and context.endswith("<|im_start|>assistant\n")


def test_malformed_record_stops_lm_eval_naming_it(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    data = tmp_path / "data" / "Native" / "Test" / "mcqu"
    data.mkdir(parents=True)
    records = json.loads((demo_data_dir / "Native/Test/mcqu/mcqu_test.json").read_text(encoding="utf-8"))
    records[3]["answer"] = "Z"
    (data / "mcqu_test.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    completed = run(
        [
            str(BIN / "lm_eval"),
            "--include_path",
            str(tasks_path()),
            "--tasks",
            "medinj_mcqu_native",
            "--model",
            "hf",
            "--model_args",
            model_args(tiny_model_dir),
            "--metadata",
            json.dumps({"data_dir": str(tmp_path / "data")}),
            "--limit",
            "2",
        ],
        tmp_path,
    )
    assert completed.returncode != 0
    assert f"record '{records[3]['id']}', field 'answer': gold letter(s) Z not among options" in completed.stderr
