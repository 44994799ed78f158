"""Output files written beside their place then renamed into it: a kill never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed into place.

    ``path`` naming a folder is an :class:`InputError`, before anything is written."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON (non-ASCII kept) through :func:`write_text_atomic`."""
    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
