"""Prompt rendering: exact text, targets and the training conversation."""

from __future__ import annotations

import pytest

from lm_eval_medinj.prompts import INSTRUCTIONS, render_messages, render_prompt, render_target
from lm_eval_medinj.records import MedRecord

MCQ = MedRecord(
    "q1",
    "native",
    "demo",
    "mcq",
    "Quels sont des antibiotiques ?",
    {"A": "Amoxicilline", "B": "Paracétamol", "C": "Ceftriaxone"},
    ("C", "A"),
)


def test_mcq_prompt_text() -> None:
    assert render_prompt(MCQ) == (
        f"{INSTRUCTIONS['mcq']}\n\n"
        "Question : Quels sont des antibiotiques ?\n"
        "(A) Amoxicilline\n(B) Paracétamol\n(C) Ceftriaxone\n\n"
        "Réponse :"
    )
    assert render_target(MCQ) == "A, C"


def test_context_and_open_question() -> None:
    record = MedRecord(
        "o1", "native", "demo", "oeq", "Que faire ?", reference="Appeler le 15.", context="Patient inconscient."
    )
    prompt = render_prompt(record)
    assert prompt.startswith(INSTRUCTIONS["oeq"] + "\n\nContexte : Patient inconscient.\n\nQuestion : Que faire ?")
    assert "(A)" not in prompt
    assert render_target(record) == "Appeler le 15."


def test_messages_are_prompt_then_target() -> None:
    assert render_messages(MCQ) == [
        {"role": "user", "content": render_prompt(MCQ)},
        {"role": "assistant", "content": "A, C"},
    ]


def test_open_question_without_reference_cannot_be_a_target() -> None:
    with pytest.raises(ValueError, match="without a reference"):
        render_target(MedRecord("o2", "native", "demo", "oeq", "Q ?"))
