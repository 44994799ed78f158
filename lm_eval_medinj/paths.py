"""Where the package's lm-eval task YAML files live (installed wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def tasks_path() -> Path:
    """The folder to give lm-eval's ``--include_path``.

    A wheel carries the top-level ``tasks/`` folder inside the package; an editable install
    or a source checkout uses the top-level folder itself.
    """
    for candidate in (_PACKAGE_DIR / "tasks", _PACKAGE_DIR.parent / "tasks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"lm-eval task folder not found next to {_PACKAGE_DIR}")


def demo_data_path() -> Path:
    """The demo questions shipped with the package (written for the demo, not benchmark data)."""
    return _PACKAGE_DIR / "demo_data"
