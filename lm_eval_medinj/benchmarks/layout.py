"""Where a benchmark's data is: the Hub, or ``data_dir`` (metadata or ``$MEDINJ_DATA_DIR``); folder look-ups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
DATA_DIR_ENV = "MEDINJ_DATA_DIR"
SKIP_INVALID_ENV = "MEDINJ_SKIP_INVALID"


class DataNotFoundError(FileNotFoundError):
    """No data file for a requested benchmark split."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The explicit ``data_dir``, else ``$MEDINJ_DATA_DIR``, else ``None`` (use the Hub)."""
    value = data_dir or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"data_dir {path} does not exist")
    return path


def resolve_skip_invalid(skip_invalid: bool | str | None) -> bool:
    """The explicit switch, else ``$MEDINJ_SKIP_INVALID`` ("1", "true", "yes")."""
    value = skip_invalid if skip_invalid is not None else os.environ.get(SKIP_INVALID_ENV, "")
    return str(value).strip().lower() in {"1", "true", "yes"}


def child_folder(folder: Path | None, name: str) -> Path | None:
    """The sub-folder ``name`` of ``folder``, matched case-insensitively (one match, else an error)."""
    if folder is None or not folder.is_dir():
        return None
    found = [child for child in folder.iterdir() if child.is_dir() and child.name.lower() == name.lower()]
    if len(found) > 1:
        raise DataNotFoundError(
            f"{folder} holds {len(found)} folders named {name!r} up to case ({', '.join(p.name for p in found)}); "
            "keep one"
        )
    return found[0] if found else None
