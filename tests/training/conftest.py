"""Fixtures of the training tests: small pools of the three provenances, settings for tiny runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.training.settings import parse_args
from tests.training.fixtures import write_pools

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_SETTINGS = REPO_ROOT / "train" / "configs" / "cpu_smoke.yaml"


@pytest.fixture(scope="session")
def pools_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train pools in the Hub layout: Native/, Translated/, Synthetic/ with mcq, mcqu and oeq."""
    return write_pools(tmp_path_factory.mktemp("pools"))


@pytest.fixture
def tiny_args(tiny_model_dir: Path, pools_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``parse_args`` for a few CPU steps on the tiny model; extra flags are appended."""
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))  # restored after the test

    def parse(*flags: str):
        return parse_args(
            [
                "--settings", str(SMOKE_SETTINGS),
                "--model_name_or_path", str(tiny_model_dir),
                "--data_dir", str(pools_dir),
                "--output_dir", str(tmp_path / "runs"),
                "--report_to", "none",
                *flags,
            ]
        )  # fmt: skip

    return parse
