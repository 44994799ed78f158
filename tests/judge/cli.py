"""Run the judge command-line scripts in a subprocess, offline, with one torch thread."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def script_argv(script: str, *args: str | Path) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "judge" / script), *map(str, args)]


def run_script(script: str, *args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        script_argv(script, *args),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )


def script_main(script: str) -> Callable[[list[str]], None]:
    """The ``main`` of ``judge/<script>``, imported in this process (for fast error-path tests)."""
    path = REPO_ROOT / "judge" / script
    spec = importlib.util.spec_from_file_location(f"judge_script_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main
