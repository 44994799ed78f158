"""Fixtures of the OEQ tests: the French OEQ fixture, a tiny encoder, a tiny model that answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.lm_tasks import doc_to_text, load_dataset
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


@pytest.fixture(scope="session")
def learnt_answers() -> dict[str, str]:
    """Prompt -> answer (the reference's first four words) for the first :data:`ANSWERED` questions."""
    docs = load_dataset("medinjection", "oeq", ["native"], data_dir=str(OEQ_FIXTURE_DIR))["test"]
    return {doc_to_text(doc): " ".join(doc["reference"].split()[:4]) for doc in docs.select(range(ANSWERED))}


@pytest.fixture(scope="session")
def answering_model_dir(
    tiny_model_dir: Path, learnt_answers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny Llama taught to give :func:`learnt_answers`, then to start a new question."""
    return teach_answers(tiny_model_dir, learnt_answers, tmp_path_factory.mktemp("answering-model"))
