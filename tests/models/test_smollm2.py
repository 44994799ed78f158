"""``medinj-hf`` on SmolLM2-135M-Instruct (GGUF, float32) and real FrenchMedMCQA questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from lm_eval_medinj.demo import smollm2_gguf
from lm_eval_medinj.lm_tasks import doc_to_choice
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from tests.models.checks import assert_same_scores, check_gen_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> tuple[Any, Any]:
    try:
        folder, gguf_file = smollm2_gguf()
    except SystemExit as missing:
        pytest.skip(str(missing))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    return model, tokenizer


@pytest.fixture(scope="module")
def frenchmedmcqa_tasks(frenchmedmcqa_dir: Path) -> TaskManager:
    return TaskManager(include_path=str(tasks_path()), metadata={"data_dir": str(frenchmedmcqa_dir)})


def _lm(cls: type[HFLM], smollm2: tuple[Any, Any]) -> HFLM:
    model, tokenizer = smollm2
    return cls(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")


@pytest.mark.parametrize(("task_name", "limit"), [("medinj_frenchmedmcqa_mcqu", 4), ("medinj_frenchmedmcqa_mcq", 1)])
def test_shared_prefix_scores_equal_plain_hf(
    smollm2: tuple[Any, Any], frenchmedmcqa_tasks: TaskManager, task_name: str, limit: int
) -> None:
    task = next(iter(frenchmedmcqa_tasks.load([task_name])["tasks"].values()))
    task.build_all_requests(limit=limit)
    expected = _lm(HFLM, smollm2).loglikelihood(task.instances)
    assert_same_scores(expected, _lm(MedinjHFLM, smollm2).loglikelihood(task.instances))


@pytest.mark.parametrize("chat", [False, True])
def test_gen_outputs_match_constraints_and_agree_with_choice_scoring(
    smollm2: tuple[Any, Any], frenchmedmcqa_tasks: TaskManager, chat: bool
) -> None:
    lm = _lm(MedinjHFLM, smollm2)
    runs = {
        name: simple_evaluate(
            model=lm, tasks=[name], task_manager=frenchmedmcqa_tasks, limit=6, log_samples=True,
            apply_chat_template=chat,
        )
        for name in ("medinj_frenchmedmcqa_mcqu_gen", "medinj_frenchmedmcqa_mcqu")
    }  # fmt: skip
    assert check_gen_samples(runs["medinj_frenchmedmcqa_mcqu_gen"], ["medinj_frenchmedmcqa_mcqu_gen"]) == 6
    generated = {
        sample["doc_id"]: sample["resps"][0][0].strip()
        for sample in runs["medinj_frenchmedmcqa_mcqu_gen"]["samples"]["medinj_frenchmedmcqa_mcqu_gen"]
    }
    for sample in runs["medinj_frenchmedmcqa_mcqu"]["samples"]["medinj_frenchmedmcqa_mcqu"]:
        scores = [response[0][0] for response in sample["resps"]]
        chosen = doc_to_choice(sample["doc"])[max(range(len(scores)), key=scores.__getitem__)]
        assert generated[sample["doc_id"]] == chosen
    mcq = simple_evaluate(
        model=lm, tasks=["medinj_frenchmedmcqa_mcq_gen"], task_manager=frenchmedmcqa_tasks, limit=6,
        log_samples=True, apply_chat_template=chat,
    )  # fmt: skip
    assert check_gen_samples(mcq, ["medinj_frenchmedmcqa_mcq_gen"]) == 6


def test_free_generation_matches_plain_hf(smollm2: tuple[Any, Any], frenchmedmcqa_tasks: TaskManager) -> None:
    """``_greedy`` answers, decoded by ``medinj-hf`` in one stack of 12 rows, are plain ``hf``'s."""
    plain = _lm(HFLM, smollm2)
    task = next(iter(frenchmedmcqa_tasks.load(["medinj_frenchmedmcqa_mcq_greedy"])["tasks"].values()))
    task.build_all_requests(limit=12, apply_chat_template=True, chat_template=plain.apply_chat_template)
    expected = plain.generate_until(task.instances)
    assert sum(bool(answer.strip()) for answer in expected) >= 6, "SmolLM2 should answer most questions"
    assert _lm(MedinjHFLM, smollm2).generate_until(task.instances) == expected
