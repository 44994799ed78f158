"""The tasks against the authors' procedure, item by item, on SmolLM2 and real questions.

FrenchMedMCQA test questions become Hub-shaped records (options only in the user turn, some
with a system turn, some with options the readers cannot parse). An independent reference
(``tests/helpers/authors_reference.py``, written from the issue's text: transformers
``generate``, batch size 1) decodes them as the authors did; the ``_gen`` and ``_greedy`` tasks
must give the same per-item scores on at least 98% of items, from exactly the authors' prompts.
Choice scoring must pick what a brute-force log P(answer + end of turn | prompt) picks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from lm_eval_medinj.mcq.task import doc_to_choice
from lm_eval_medinj.models.cache_api import output_cache, with_cache
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from tests.helpers.authors_reference import reference_scores
from tests.helpers.hub_shaped import write_hub_shaped
from tests.models.checks import check_gen_samples

pytestmark = pytest.mark.slow

PER_FORMAT = 50
# Plain hf scores each of the 31 MCQ candidates as its own sequence: a slice of the questions.
HF_CHOICE_QUESTIONS = 12
AGREEMENT = 0.98


@pytest.fixture(scope="module")
def hub_dir(frenchmedmcqa_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hub_shaped(frenchmedmcqa_dir, tmp_path_factory.mktemp("hub-shaped"), PER_FORMAT)


@pytest.fixture(scope="module")
def runs(smollm2: tuple[Any, Any], hub_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The four decoding tasks and choice scoring on medinj-hf, choice scoring on plain hf."""
    model, tokenizer = smollm2
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(hub_dir)})
    samples: dict[str, list[dict[str, Any]]] = {}
    for cls in (MedinjHFLM, HFLM):
        lm = cls(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
        tasks, limit = ["medinj_mcq_native"], HF_CHOICE_QUESTIONS
        if cls is MedinjHFLM:
            tasks += [f"medinj_{task}_native_{mode}" for task in ("mcqu", "mcq") for mode in ("gen", "greedy")]
            limit = None
        results = simple_evaluate(
            model=lm, tasks=tasks, task_manager=manager, limit=limit, log_samples=True, apply_chat_template=True
        )
        for name, task_samples in results["samples"].items():
            samples[f"{cls.__name__}/{name}"] = task_samples
    return samples


@pytest.mark.parametrize("mode", ["gen", "greedy"])
@pytest.mark.parametrize("task", ["mcqu", "mcq"])
def test_per_item_scores_equal_the_authors_procedure(
    smollm2: tuple[Any, Any], hub_dir: Path, runs: dict[str, list[dict[str, Any]]], task: str, mode: str
) -> None:
    model, tokenizer = smollm2
    expected = reference_scores(model, tokenizer, hub_dir, task, constrained=mode == "gen")
    samples = runs[f"MedinjHFLM/medinj_{task}_native_{mode}"]
    assert len(samples) == len(expected) == PER_FORMAT
    metrics = ["em", "hamming"] if task == "mcq" else ["em"]
    same = [all(sample[m] == expected[sample["doc"]["id"]][m] for m in metrics) for sample in samples]
    differing = [
        (sample["doc"]["id"], sample["resps"][0][0], expected[sample["doc"]["id"]]["text"])
        for sample, agrees in zip(samples, same, strict=True)
        if not agrees
    ]
    assert sum(same) >= AGREEMENT * len(samples), differing
    if mode == "gen":
        check_gen_samples({"samples": {"run": samples}}, ["run"])


def test_prompts_are_the_records_own_turns_through_the_chat_template(
    smollm2: tuple[Any, Any], runs: dict[str, list[dict[str, Any]]]
) -> None:
    _, tokenizer = smollm2
    checked = systems = 0
    for name, samples in runs.items():
        for sample in samples:
            turns = [turn for turn in sample["doc"]["messages"] if turn["role"] != "assistant"]
            expected = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            for argument in sample["arguments"]:
                assert argument[0] == expected, name
            checked += 1
            systems += turns[0]["role"] == "system"
    assert checked == 5 * PER_FORMAT + HF_CHOICE_QUESTIONS and systems > 0


def _brute_force_choice(model: Any, tokenizer: Any, prompt: str, candidates: list[str]) -> int:
    """Index of the candidate maximising log P(answer tokens + <|im_end|> | prompt), each candidate
    decoded alone from a copy of the prompt's key/value cache (plain transformers, no batching)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        output = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
        first, cache = output.logits[0, -1].log_softmax(-1), output_cache(output)
        totals = []
        for candidate in candidates:
            answer = tokenizer(candidate, add_special_tokens=False)["input_ids"] + [end_id]
            rest = model(
                **with_cache(model, copy.deepcopy(cache), input_ids=torch.tensor([answer[:-1]]), use_cache=True)
            )
            logprobs = rest.logits[0].log_softmax(-1)
            totals.append(
                first[answer[0]].item() + sum(logprobs[i, token].item() for i, token in enumerate(answer[1:]))
            )
    return max(range(len(candidates)), key=totals.__getitem__)


def _choice_pick(sample: dict[str, Any]) -> int:
    return max(range(len(sample["resps"])), key=lambda i: sample["resps"][i][0][0])


def test_choice_scoring_picks_the_most_probable_complete_answer(
    smollm2: tuple[Any, Any], runs: dict[str, list[dict[str, Any]]]
) -> None:
    model, tokenizer = smollm2
    for backend, questions in (("MedinjHFLM", PER_FORMAT), ("HFLM", HF_CHOICE_QUESTIONS)):
        samples = runs[f"{backend}/medinj_mcq_native"]
        agree = sum(
            _choice_pick(sample)
            == _brute_force_choice(model, tokenizer, sample["arguments"][0][0], doc_to_choice(sample["doc"]))
            for sample in samples
        )
        assert len(samples) == questions and agree >= AGREEMENT * questions, (backend, agree)


# FrenchMedMCQA test questions (indexes among the multi-answer ones) on which SmolLM2's most
# probable complete answer has several letters (bench/protocol_agreement.json).
SEVERAL_LETTER_QUESTIONS = (89, 198)


def test_choice_scoring_predicts_several_letters_where_the_model_prefers_them(
    smollm2: tuple[Any, Any], frenchmedmcqa_dir: Path, tmp_path: Path
) -> None:
    hub = write_hub_shaped(frenchmedmcqa_dir, tmp_path / "all", max(SEVERAL_LETTER_QUESTIONS) + 1)
    records = json.loads((hub / "Native/Test/mcq/mcq_test.json").read_text(encoding="utf-8"))
    chosen = tmp_path / "chosen" / "Native" / "Test" / "mcq"
    chosen.mkdir(parents=True)
    (chosen / "mcq_test.json").write_text(json.dumps([records[i] for i in SEVERAL_LETTER_QUESTIONS]), encoding="utf-8")
    manager = TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(tmp_path / "chosen")}
    )
    model, tokenizer = smollm2
    for cls in (HFLM, MedinjHFLM):
        lm = cls(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
        results = simple_evaluate(
            model=lm, tasks=["medinj_mcq_native"], task_manager=manager, log_samples=True, apply_chat_template=True
        )
        several = 0
        for sample in results["samples"]["medinj_mcq_native"]:
            candidates = doc_to_choice(sample["doc"])
            best = _brute_force_choice(model, tokenizer, sample["arguments"][0][0], candidates)
            assert _choice_pick(sample) == best, (cls.__name__, sample["doc"]["id"])
            several += "," in candidates[best]
        assert several > 0, f"{cls.__name__}: no several-letter answer is the most probable one"
