"""The tasks against the authors' procedure, item by item, on SmolLM2 and real questions.

FrenchMedMCQA test questions become Hub-shaped records (options only in the user turn, some
with a system turn, some with options the readers cannot parse). An independent reference
(``tests/helpers/authors_reference.py``, written from the issue's text: transformers
``generate``, batch size 1) decodes them as the authors did; the ``_gen`` and ``_greedy`` tasks
must give the same per-item scores on at least 98% of items, from exactly the authors' prompts.
Choice scoring must pick what a brute-force log P(answer + end of turn | prompt) picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from lm_eval_medinj.hub_shaped import write_hub_shaped
from lm_eval_medinj.lm_tasks import doc_to_choice
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from tests.helpers.authors_reference import reference_scores
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
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": str(hub_dir)})
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
    """Index of the candidate maximising log P(answer tokens + <|im_end|> | prompt): every
    candidate as a full sequence, right-padded into one batch, no cache and no sharing."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answers = [tokenizer(candidate, add_special_tokens=False)["input_ids"] + [end_id] for candidate in candidates]
    width = len(prompt_ids) + max(len(answer) for answer in answers)
    ids = torch.zeros((len(answers), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, answer in enumerate(answers):
        ids[row, : len(prompt_ids) + len(answer)] = torch.tensor(prompt_ids + answer)
        mask[row, : len(prompt_ids) + len(answer)] = 1
    first = len(prompt_ids) - 1  # the position whose logits predict the first answer token
    with torch.no_grad():
        logprobs = model(input_ids=ids, attention_mask=mask, logits_to_keep=width - first).logits.log_softmax(-1)
    totals = [logprobs[row, torch.arange(len(answer)), answer].sum().item() for row, answer in enumerate(answers)]
    return max(range(len(candidates)), key=totals.__getitem__)


def test_choice_scoring_picks_the_most_probable_complete_answer(
    smollm2: tuple[Any, Any], runs: dict[str, list[dict[str, Any]]]
) -> None:
    model, tokenizer = smollm2
    agree = {"HFLM": 0, "MedinjHFLM": 0}
    multi_letter = dict.fromkeys(agree, 0)
    plain = {sample["doc"]["id"] for sample in runs["HFLM/medinj_mcq_native"]}
    for backend in agree:
        for sample in runs[f"{backend}/medinj_mcq_native"]:
            candidates = doc_to_choice(sample["doc"])
            best = _brute_force_choice(model, tokenizer, sample["arguments"][0][0], candidates)
            pick = max(range(len(candidates)), key=lambda i, s=sample: s["resps"][i][0][0])
            agree[backend] += pick == best
            # a several-letter prediction where the model prefers one, counted on the questions both scored
            multi_letter[backend] += pick == best and "," in candidates[best] and sample["doc"]["id"] in plain
    assert agree["MedinjHFLM"] >= AGREEMENT * PER_FORMAT and agree["HFLM"] >= AGREEMENT * HF_CHOICE_QUESTIONS
    assert multi_letter["HFLM"] > 0 and multi_letter["MedinjHFLM"] > 0, multi_letter
