"""Fixtures of the OEQ tests: the French OEQ fixture, a tiny encoder, a tiny model that answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from lm_eval_medinj.base_task import doc_prompt_turns, doc_to_text, load_dataset
from tests.oeq.models import build_tiny_encoder, teach_answers

OEQ_FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
ANSWERED = 2  # the fixture's first questions, which the answering model has learnt


@pytest.fixture(scope="session")
def oeq_data_dir() -> Path:
    """Four French open questions in the Hub layout (``Native/Test/oeq/oeq_test.json``)."""
    return OEQ_FIXTURE_DIR


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT with its tokenizer, saved locally (no rescaling baseline exists for it)."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


def _answered(prompt: str) -> list[dict[str, Any]]:
    docs = load_dataset("medinjection", "oeq", ["native"], data_dir=str(OEQ_FIXTURE_DIR), prompt=prompt)["test"]
    return list(docs.select(range(ANSWERED)))


def _answer(doc: dict[str, Any]) -> str:
    """What the answering model learns to say: the reference's first four words."""
    return " ".join(doc["reference"].split()[:4])


@pytest.fixture(scope="session")
def learnt_answers() -> dict[str, str]:
    """Canonical prompt (no chat template) -> answer, for the first :data:`ANSWERED` questions."""
    return {doc_to_text(doc): _answer(doc) for doc in _answered("canonical")}


@pytest.fixture(scope="session")
def learnt_chat_answers(tiny_model_dir: Path) -> dict[str, str]:
    """Chat rendering of each record's own non-assistant turns -> answer (the default prompt)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return {
        tokenizer.apply_chat_template(doc_prompt_turns(doc), tokenize=False, add_generation_prompt=True): _answer(doc)
        for doc in _answered("conversation")
    }


@pytest.fixture(scope="session")
def answering_model_dir(
    tiny_model_dir: Path,
    learnt_answers: dict[str, str],
    learnt_chat_answers: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The tiny Llama taught to give the learnt answers, then to start a new question."""
    return teach_answers(
        tiny_model_dir, learnt_answers, learnt_chat_answers, tmp_path_factory.mktemp("answering-model")
    )
