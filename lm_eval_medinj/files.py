"""Reading the package's input files, and writing its outputs so that a kill never leaves half a file.

Readers: UTF-8 text (a byte order mark allowed), a JSON object, JSON Lines of objects. A bad file
is one error naming it (and the line); ``error`` picks the :class:`InputError` subclass raised.
Writers: beside the destination, then renamed into place."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError


def read_text(path: Path, error: type[InputError] = InputError) -> str:
    """A file's text: UTF-8, with or without a byte order mark."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise error(f"{path}: not UTF-8 text (byte {bad.start}: {bad.reason})") from None
    except IsADirectoryError:
        raise error(f"{path}: a folder, not a file") from None


def _parsed(text: str, path: Path, error: type[InputError], line_no: int | None = None) -> Any:
    """``text`` parsed; an error names the file and line (``line_no``, or the line within ``text``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as bad:
        raise error(f"{path}:{line_no or bad.lineno}: invalid JSON ({bad.msg}); a truncated file?") from None
    except RecursionError:
        raise error(f"{path}:{line_no or 1}: invalid JSON (nested too deeply)") from None


def read_json(path: Path, error: type[InputError] = InputError) -> dict[str, Any]:
    """A file holding one JSON object."""
    data = _parsed(read_text(path, error), path, error)
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: Path, error: type[InputError] = InputError) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file, one per non-blank line (none: an empty list)."""
    rows = []
    for line_no, line in enumerate(read_text(path, error).splitlines(), start=1):
        if line.strip():
            row = _parsed(line, path, error, line_no)
            if not isinstance(row, dict):
                raise error(f"{path}:{line_no}: expected a JSON object")
            rows.append(row)
    return rows


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
