"""Fixtures of the overlap tests: the real FrenchMedMCQA test set as test documents, an audit runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.benchmarks.frenchmedmcqa import load as load_frenchmedmcqa
from lm_eval_medinj.overlap.audit import AuditResult, AuditSettings, run_audit
from lm_eval_medinj.overlap.test_side import TestSets, task_docs
from lm_eval_medinj.overlap.training_side import ReadSettings, load_train
from tests.training.fixtures import write_pools

FORMATS = ("mcqu", "mcq")


def frenchmedmcqa_tests(folder: Path) -> TestSets:
    """The FrenchMedMCQA test split as lm-eval's documents (``MedRecord.to_doc``), one test set per format."""
    tests = TestSets()
    for task in FORMATS:
        tests.add(task_docs(task, [record.to_doc() for record in load_frenchmedmcqa(task, "test", folder)]))
    return tests


def audit(train_dir: Path, tests: TestSets, settings: AuditSettings | None = None) -> AuditResult:
    """The audit of a training folder (its layout detected) against ``tests``; unreadable training records
    are skipped (FrenchMedMCQA's train.json holds one record twice)."""
    train = load_train(train_dir, ReadSettings(skip_invalid=True, progress=False))
    return run_audit(train, tests, settings or AuditSettings(), progress=False)


def flagged_pairs(result: AuditResult) -> dict[tuple[str, str], str]:
    """(test id, training id) -> kind, for every match."""
    return {
        (doc.id, result.train.ids[match.train]): match.kind
        for doc, matches in zip(result.tests.docs, result.doc_matches(), strict=True)
        for match in matches
    }


@pytest.fixture(scope="session")
def fmm_tests(frenchmedmcqa_dir: Path) -> TestSets:
    return frenchmedmcqa_tests(frenchmedmcqa_dir)


@pytest.fixture(scope="session")
def pools_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train pools in the Hub layout (tests/training/fixtures.py): Native/, Translated/, Synthetic/."""
    return write_pools(tmp_path_factory.mktemp("pools"))
