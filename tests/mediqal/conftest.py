"""Fixtures of the MediQAl tests: MediQAl-shaped files written at test time, a tiny encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.mediqal import write_mediqal, write_mediqal_real
from tests.oeq.models import build_tiny_encoder


@pytest.fixture(scope="session")
def mediqal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mcqu/``, ``mcqm/`` (test, validation) and ``oeq/`` (test) in MediQAl's layout."""
    return write_mediqal(tmp_path_factory.mktemp("mediqal"))


@pytest.fixture(scope="session")
def mediqal_real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MediQAl in the authors' real shape: "A,C,E" answers, null cases, QCU / QCM, ids repeated across configs."""
    return write_mediqal_real(tmp_path_factory.mktemp("mediqal-real"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT for BERTScore, saved locally."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))
