"""Reading an lm-eval ``--output_path``: its newest results and samples files, one per task."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_medinj import files
from lm_eval_medinj.errors import InputError


class OutputError(InputError):
    """An lm-eval output file that cannot be read."""


def _name(path: Path, prefix: str) -> str:
    """A file's name without ``prefix`` and lm-eval's ``_<date>`` suffix (the task of a samples file)."""
    return path.stem.removeprefix(prefix).rsplit("_", 1)[0]


def newest_by_name(paths: Iterable[Path], prefix: str) -> dict[str, Path]:
    """Name (the stem without ``prefix`` and lm-eval's ``_<date>`` suffix) -> its newest file."""
    found: dict[str, Path] = {}
    for path in sorted(paths, key=lambda p: p.name):  # lm-eval's dates sort as text
        found[_name(path, prefix)] = path
    return found


def newest_samples(folder: Path) -> dict[str, Path]:
    """Task name -> its newest ``samples_<task>_<date>.jsonl`` below ``folder``.

    lm-eval writes a model's samples into one sub-folder of ``--output_path``; a task's samples in two
    sub-folders are two models' runs, and picking the newest would mix them: an error names them.
    """
    paths = list(folder.rglob("samples_*.jsonl"))
    newest = newest_by_name(paths, "samples_")
    for task, chosen in newest.items():
        others = sorted({str(p.parent) for p in paths if _name(p, "samples_") == task} - {str(chosen.parent)})
        if others:
            raise OutputError(
                f"{folder}: task {task} has samples in {chosen.parent} and {', '.join(others)}: several runs "
                "below one folder; give one run's folder"
            )
    return newest


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON Lines file; a bad line, or no row at all, is an error naming the file (and line)."""
    rows = files.read_jsonl(path, OutputError)
    if not rows:
        raise OutputError(f"{path}: empty file, no rows (an interrupted lm-eval run? run it again)")
    return rows


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file (lm-eval's ``results_*.json``); a truncated or other file is an error naming it."""
    return files.read_json(path, OutputError)
