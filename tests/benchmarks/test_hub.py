"""Which revision a Hub dataset is read at: the caller's, else the pinned one, else the latest with a warning."""

from __future__ import annotations

import logging

import pytest

from lm_eval_medinj.benchmarks import hub


def test_the_callers_revision_wins_then_the_pin(caplog: pytest.LogCaptureFixture) -> None:
    assert hub.revision_for("qanastek/frenchmedmcqa", None) == hub.PINNED_REVISIONS["qanastek/frenchmedmcqa"]
    assert hub.revision_for("qanastek/frenchmedmcqa", "main") == "main"
    assert hub.revision_for("MedInjection-FR/Native", {"MedInjection-FR/Native": "abc"}) == "abc"
    with caplog.at_level(logging.WARNING, logger=hub.__name__):
        assert hub.revision_for("some/unpinned", {"other/repo": "abc"}) is None
        assert hub.revision_for("some/unpinned", None) is None
    assert caplog.text.count("some/unpinned has no pinned revision") == 1, "said once"


def test_a_pin_is_a_full_commit() -> None:
    assert all(len(commit) == 40 and int(commit, 16) >= 0 for commit in hub.PINNED_REVISIONS.values())
