"""Reading an lm-eval ``--output_path``: its newest results and samples files, one per task."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError


class OutputError(InputError):
    """An lm-eval output file that cannot be read."""


def newest_by_name(paths: Iterable[Path], prefix: str) -> dict[str, Path]:
    """Name (the stem without ``prefix`` and lm-eval's ``_<date>`` suffix) -> its newest file."""
    found: dict[str, Path] = {}
    for path in sorted(paths, key=lambda p: p.name):  # lm-eval's dates sort as text
        found[path.stem.removeprefix(prefix).rsplit("_", 1)[0]] = path
    return found


def newest_samples(folder: Path) -> dict[str, Path]:
    """Task name -> its newest ``samples_<task>_<date>.jsonl`` below ``folder``."""
    return newest_by_name(folder.rglob("samples_*.jsonl"), "samples_")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON Lines file; a bad line is an error naming the file and line."""
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise OutputError(f"{path}:{line_no}: invalid JSON ({error.msg})") from None
    return rows
