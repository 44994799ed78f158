"""Reading data files into records: JSON, JSON Lines and parquet, every fault named in one line.

A file is JSON (an array of records, or an object holding one under ``data``), JSON Lines, or
parquet. Text is UTF-8 (a byte-order mark is allowed). Anything else is a :class:`RecordError`
naming the file, the record (or ``<file>``) and the field: bytes that are not UTF-8, invalid or
absurdly nested JSON, a record that is not an object, an empty file or an empty array.

:func:`read_files` parses every raw record with the caller's parser, validates it, refuses a
duplicate id and, with ``skip_invalid``, drops invalid records and counts them in one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.records import MedRecord, RecordError, validate_record

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
FILE = "<file>"
# (raw record, file path, index in the file) -> record
Parser = Callable[[Mapping[str, Any], str, int], MedRecord]


@dataclass
class ReadReport:
    """Records kept and errors skipped (only with ``skip_invalid``)."""

    records: list[MedRecord] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)


def data_files(folder: Path) -> list[Path]:
    """The data files directly in ``folder`` (not below it), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES)


def files_sha256(paths: Iterable[Path]) -> str:
    """``sha256:<hex>`` of the files' bytes in the given order: the revision of local data."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def _text_of(path: Path) -> str:
    source = str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RecordError(
            source, FILE, "<encoding>", f"not UTF-8 text (byte {error.start}: {data[error.start : error.start + 1]!r})"
        ) from None
    if not text.strip():
        raise RecordError(source, FILE, "<records>", "empty file: no records")
    return text


def _json(text: str, source: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(
            source, where, "<record>", f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise RecordError(source, where, "<record>", "JSON nested too deeply") from None


def iter_raw_records(path: Path) -> Iterator[dict[str, Any]]:
    """Raw dict records of one JSON, JSON Lines or parquet file (at least one, else an error)."""
    source = str(path)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as error:
            raise RecordError(source, FILE, "<parquet>", f"unreadable parquet file ({error})") from None
        if not rows:
            raise RecordError(source, FILE, "<records>", "empty file: no records")
        yield from rows
        return
    text = _text_of(path)
    stripped = text.lstrip()
    if path.suffix != ".jsonl" and stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            if not stripped.startswith("{"):
                _json(text, source, FILE)  # an array that does not parse: say where
            data = None  # a .json file holding JSON Lines
        except RecursionError:
            raise RecordError(source, FILE, "<record>", "JSON nested too deeply") from None
        if data is not None:
            yield from _array(data, source)
            return
    count = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            item = _json(line, source, f"line {line_no}")
            if not isinstance(item, dict):
                raise RecordError(source, f"line {line_no}", "<record>", "record is not a JSON object")
            count += 1
            yield item
    if not count:
        raise RecordError(source, FILE, "<records>", "no records")


def _array(data: Any, source: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RecordError(source, FILE, "<root>", f"expected a JSON array of records, got {type(data).__name__}")
    if not data:
        raise RecordError(source, FILE, "<records>", "empty array: no records")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise RecordError(source, f"#{index}", "<record>", "record is not a JSON object")
        yield item


def read_files(files: Iterable[Path], parse: Parser, skip_invalid: bool = False) -> ReadReport:
    """Parse and validate every record of ``files``; ids must be unique across them."""
    report = ReadReport()
    files = list(files)
    seen_ids: dict[str, str] = {}
    for path in files:
        for index, raw in enumerate(iter_raw_records(path)):
            try:
                record = parse(raw, str(path), index)
                validate_record(record, str(path))
                if record.id in seen_ids:
                    raise RecordError(str(path), record.id, "id", f"duplicate id (first seen in {seen_ids[record.id]})")
            except RecordError as error:
                if not skip_invalid:
                    raise
                report.skipped.append(error)
                continue
            seen_ids[record.id] = str(path)
            report.records.append(record)
    if report.skipped:
        log.warning(
            "skipped %d invalid record(s) of %d in %s; first: %s",
            len(report.skipped),
            len(report.skipped) + len(report.records),
            ", ".join(str(f) for f in files),
            report.skipped[0],
        )
    return report
