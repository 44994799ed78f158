"""Where the package's lm-eval task YAML files live (installed wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def tasks_path() -> Path:
    """The folder of this package's lm-eval task YAML (``lm_eval_medinj/tasks``): lm-eval's ``--include_path``."""
    return _PACKAGE_DIR / "tasks"


def demo_data_path() -> Path:
    """The demo questions shipped with the package (written for the demo, not benchmark data)."""
    return _PACKAGE_DIR / "demo_data"
