"""The two parts of an lm-eval samples line that the report reads: the document and the metric values.

lm-eval 0.4.13 writes each logged sample as one JSON object whose keys come in this order:
``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``, ``filter``,
``metrics``, ``doc_hash``, ``prompt_hash``, ``target_hash``, then one key per metric value
(``em``, ``hamming``). Most of a line is candidate prompts and their scores (``arguments``,
``resps``: about 24 KB for an MCQ question with its 31 candidate answers), which the report does
not use. So only the document (from ``"doc": `` to the ``, "target": `` after it) and the metric
values (after ``"target_hash"``) are parsed; the rest of the line is skipped unread.

Why this is exact: outside a string, an unescaped ``"`` can only delimit a string, so the
searched separators cannot match inside a string value, and a slice cut short inside the
document (a nested ``target`` key) is not valid JSON. Any line whose parts do not parse as
objects is parsed whole, and a line that is not JSON is an error naming file and line. The
skipped part of a line is not checked: a line damaged there but whole at both ends is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from lm_eval_medinj.lm_eval_outputs import OutputError

_HEAD = re.compile(rb'\{"doc_id": -?\d+, "doc": ')
_DOC_END = b', "target": '
_TARGET_HASH = b', "target_hash": "'
_BUFFER = 1 << 20
_VALUES_KEPT = 4096  # distinct metric-value tails remembered (0/1 EM and a few Hamming values in practice)

T = TypeVar("T")


def _slices(line: bytes) -> tuple[bytes, bytes] | None:
    """The document's JSON and the metric values' JSON (as an object), when the line has lm-eval's layout."""
    head = _HEAD.match(line)
    if head is None:
        return None
    doc_end = line.find(_DOC_END, head.end())
    hash_at = line.rfind(_TARGET_HASH)
    if doc_end < 0 or hash_at < doc_end:
        return None
    hash_end = line.find(b'"', hash_at + len(_TARGET_HASH))
    if hash_end < 0:
        return None
    tail = line[hash_end + 1 :].strip()
    return line[head.end() : doc_end], (b"{" + tail[1:] if tail.startswith(b",") else b"{" + tail)


def _object(text: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SampleReader(Generic[T]):
    """Reads samples files line by line, turning each document into a ``T`` with ``read_doc``.

    A question's document is the same bytes in every run that read the same data, so documents
    are converted once per distinct content (keyed by a 128-bit BLAKE2b digest of their JSON)
    across all the files this reader reads; so are the metric values, up to a bound.
    """

    def __init__(self, read_doc: Callable[[dict[str, Any], str], T]) -> None:
        self._read_doc = read_doc
        self._docs: dict[bytes, T] = {}
        self._values: dict[bytes, dict[str, Any]] = {}

    def _fast(self, line: bytes, where: str) -> tuple[T, dict[str, Any]] | None:
        slices = _slices(line)
        if slices is None:
            return None
        doc_json, values_json = slices
        values = self._values.get(values_json)
        if values is None:
            values = _object(values_json)
            if values is None:
                return None
            if len(self._values) < _VALUES_KEPT:
                self._values[values_json] = values
        digest = hashlib.blake2b(doc_json, digest_size=16).digest()
        doc = self._docs.get(digest)
        if doc is None:
            parsed = _object(doc_json)
            if parsed is None:
                return None
            doc = self._docs[digest] = self._read_doc(parsed, where)
        return doc, values

    def parts(self, line: bytes, where: str) -> tuple[T, dict[str, Any]]:
        """``(read_doc(document), top-level values)`` of one line: the values hold at least the metric
        values (``em``, ``hamming``); a line parsed whole gives all its top-level keys."""
        fast = self._fast(line, where)
        if fast is not None:
            return fast
        try:
            sample = json.loads(line)
        except ValueError as error:
            raise OutputError(f"{where}: invalid JSON ({getattr(error, 'msg', error)})") from None
        if not isinstance(sample, dict):
            raise OutputError(f"{where}: a sample must be a JSON object, got {type(sample).__name__}")
        doc = sample.get("doc")
        return self._read_doc(doc if isinstance(doc, dict) else {}, where), sample

    def read(self, path: Path) -> Iterator[tuple[str, T, dict[str, Any]]]:
        """``(where, read_doc(document), values)`` for each line of a samples file, one line at a time."""
        with path.open("rb", buffering=_BUFFER) as lines:  # a line is ~24 KB: read them in large chunks
            for line_no, line in enumerate(lines, start=1):
                if not line.isspace():
                    where = f"{path}:{line_no}"
                    yield (where, *self.parts(line, where))
