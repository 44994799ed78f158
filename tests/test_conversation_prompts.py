"""Prompts built from each record's own conversation, through lm-eval's request building."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from lm_eval_medinj.chat import AnswerEndUnknownError
from lm_eval_medinj.paths import tasks_path


@pytest.fixture(scope="module")
def plain_hf(tiny_model_dir: Path) -> HFLM:
    return HFLM(pretrained=str(tiny_model_dir), dtype="float32", batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def manager(demo_data_dir: Path) -> TaskManager:
    return TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(demo_data_dir)}
    )


def _instances(manager: TaskManager, task_name: str, chat_template: Any, **kwargs: Any) -> list[Any]:
    task = next(iter(manager.load([task_name])["tasks"].values()))
    if "num_fewshot" in kwargs:
        task.set_config("num_fewshot", kwargs.pop("num_fewshot"))
    task.build_all_requests(
        limit=2, apply_chat_template=chat_template is not None, chat_template=chat_template, **kwargs
    )  # fmt: skip
    return task.instances


def test_chat_prompt_is_the_records_turns_and_answers_end_the_turn(manager: TaskManager, plain_hf: HFLM) -> None:
    instances = _instances(manager, "medinj_mcq_native", plain_hf.apply_chat_template)
    doc = instances[0].doc
    turns = [turn for turn in doc["messages"] if turn["role"] != "assistant"]
    assert turns[0]["role"] == "system"
    expected = plain_hf.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    first = [instance for instance in instances if instance.doc["id"] == doc["id"]]
    assert len(first) == 31
    assert {instance.arguments[0] for instance in first} == {expected}
    assert first[0].arguments[1] == "A<|im_end|>" and first[-1].arguments[1] == "A, B, C, D, E<|im_end|>"


def test_fewshot_examples_are_turns_between_system_and_question(manager: TaskManager, plain_hf: HFLM) -> None:
    (instance,) = _instances(manager, "medinj_mcqu_native_gen", plain_hf.apply_chat_template, num_fewshot=2)[:1]
    context = instance.arguments[0]
    assert context.startswith("<|im_start|>system\n")
    assert context.count("<|im_start|>system") == 1
    assert context.count("<|im_start|>user") == 3 and context.count("<|im_start|>assistant") == 3
    assert context.endswith(instance.doc["messages"][1]["content"] + "<|im_end|>\n<|im_start|>assistant\n")


def test_without_a_chat_template_turns_are_joined_and_a_warning_says_so(
    manager: TaskManager, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lm_eval_medinj.base_task._warned_without_template", False)
    with caplog.at_level(logging.WARNING, logger="lm_eval_medinj.base_task"):
        instances = _instances(manager, "medinj_mcqu_native_greedy", None)
    turns = [turn["content"] for turn in instances[0].doc["messages"] if turn["role"] != "assistant"]
    assert instances[0].arguments[0] == "\n\n".join(turns)
    assert instances[0].arguments[1]["max_gen_toks"] == 1 and instances[0].arguments[1]["until"] == []
    warnings = [record for record in caplog.records if "--apply_chat_template" in record.getMessage()]
    assert len(warnings) == 1, "warned once, not per document"


def test_a_backend_that_cannot_name_its_turn_end_is_refused(manager: TaskManager) -> None:
    def template_without_tokenizer(chat: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return "".join(turn["content"] for turn in chat)

    with pytest.raises(AnswerEndUnknownError, match="exposes no tokenizer"):
        _instances(manager, "medinj_mcq_native", template_without_tokenizer)


def test_system_instruction_does_not_replace_a_records_system_turn(manager: TaskManager, plain_hf: HFLM) -> None:
    with pytest.raises(ValueError, match="has its own system turn"):
        _instances(manager, "medinj_mcqu_native_gen", plain_hf.apply_chat_template, system_instruction="Sois bref.")


def test_a_gen_prefix_is_refused_rather_than_ignored(manager: TaskManager, plain_hf: HFLM) -> None:
    task = next(iter(manager.load(["medinj_mcqu_native_gen"])["tasks"].values()))
    doc = task.eval_docs[0]
    with pytest.raises(ValueError, match="gen_prefix would start the assistant turn"):
        task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=plain_hf.apply_chat_template,
                             gen_prefix="Réponse :")  # fmt: skip
