"""A rater's ratings journal, ``ratings/<rater>.jsonl``: append-only, one JSON line per rating given.

Writing (:class:`JournalWriter`): each rating is one ``os.write`` of a whole line to a file opened
with ``O_APPEND``, then ``fsync``, before the rating is acknowledged, so a closed tab, a crash or a
``kill -9`` loses nothing acknowledged. The writer holds an exclusive ``flock`` on the file while it
lives (the lock goes with the process, even on ``kill -9``): a second writer for the same rater is
refused. On opening, a torn last line (a crash in the middle of a write) is repaired.

Reading (:func:`read_journal`): the last line for an item wins (a rater may go back and change a
rating). A torn last line (no newline at the end and not a valid rating) is ignored; any other bad
line is an error naming the file, line and field.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medinj.annotate.records import RatingLine, Scale, parse_line
from lm_eval_medinj.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Journal:
    """A journal read: the last rating per item, the lines read, and whether a torn last line was ignored."""

    ratings: dict[str, RatingLine]
    lines: int
    torn_tail: bool


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines and the unterminated tail (``b""`` when the data ends with a newline)."""
    *lines, tail = data.split(b"\n")
    return lines, tail


def _checked(line: RatingLine, scale: Scale, items: set[str] | None, where: str) -> RatingLine:
    try:
        scale.check(line.rating)
    except ValueError as error:
        raise InputError(f"{where}: field 'rating': {error}") from None
    if items is not None and line.item not in items:
        raise InputError(f"{where}: field 'item': unknown item {line.item!r} (not in items.jsonl)")
    return line


def _tail_rating(tail: bytes, scale: Scale, items: set[str] | None, where: str) -> RatingLine | None:
    """The unterminated last line as a rating, or ``None`` when it is torn."""
    try:
        return _checked(parse_line(RatingLine, tail, where), scale, items, where)
    except InputError:
        return None


def read_journal(path: Path, scale: Scale, items: set[str] | None = None) -> Journal:
    """Read a journal; ``items``, when given, are the only item ids allowed."""
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a rater's journal (move it out of {path.parent})")
    lines, tail = _split(path.read_bytes())
    ratings: dict[str, RatingLine] = {}
    count = 0
    for line_no, raw in enumerate(lines, start=1):
        if raw.strip():
            where = f"{path}:{line_no}"
            rating = _checked(parse_line(RatingLine, raw, where), scale, items, where)
            ratings[rating.item] = rating
            count += 1
    torn = False
    if tail.strip():
        last = _tail_rating(tail, scale, items, f"{path}:{len(lines) + 1}")
        if last is None:
            torn = True
            log.warning("%s: ignored an incomplete last line (a crash while writing)", path)
        else:
            ratings[last.item] = last
            count += 1
    return Journal(ratings, count, torn)


class JournalBusyError(InputError):
    """Another process is writing this rater's journal."""


class JournalWriter:
    """The only writer of one rater's journal while it is open (an exclusive ``flock``)."""

    def __init__(self, path: Path, scale: Scale, items: set[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise JournalBusyError(f"{path}: another process is recording this rater's ratings") from None
        if created:
            _fsync_dir(path.parent)
        self._repair(scale, items)
        self.journal = read_journal(path, scale, items)

    def _repair(self, scale: Scale, items: set[str]) -> None:
        """Terminate a complete last line, or cut a torn one, so that appends start on a new line."""
        data = self.path.read_bytes()
        lines, tail = _split(data)
        if not tail:
            return
        if _tail_rating(tail, scale, items, f"{self.path}:{len(lines) + 1}") is not None:
            self._write(b"\n")
        else:
            os.ftruncate(self._fd, len(data) - len(tail))
            os.fsync(self._fd)
            log.warning("%s: removed an incomplete last line (a crash while writing)", self.path)

    def _write(self, data: bytes) -> None:
        """One write, then fsync; a failed or short write is cut off again (this process is the only writer)."""
        size = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # a regular file takes a short line whole unless the disk is full
                raise OSError(f"{self.path}: wrote {written} of {len(data)} bytes")
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, size)
            raise

    def append(self, rating: RatingLine) -> None:
        """Append one rating as one line, durably (``fsync``) before returning."""
        self._write((rating.model_dump_json() + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
