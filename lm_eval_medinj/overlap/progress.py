"""Progress bars on stderr (tqdm): shown on a terminal, hidden in logs unless asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(items: Iterable[T], desc: str, unit: str, show: bool | None = None, total: int | None = None) -> Iterable[T]:
    """``items`` with a progress bar; ``show=None``: only when stderr is a terminal."""
    return tqdm(items, desc=desc, unit=unit, total=total, disable=None if show is None else not show)


def counter(total: int, desc: str, unit: str, show: bool | None = None) -> tqdm:
    """A progress bar advanced by hand (``.update(n)``), closed as a context manager."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=None if show is None else not show)
