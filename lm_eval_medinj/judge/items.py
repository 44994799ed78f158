"""Items to judge: lm-eval ``--log_samples`` files, plain JSONL, and human-labelled CSV/JSONL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError, UsageError, one_line
from lm_eval_medinj.files import read_jsonl, read_text

RATING_COLUMNS = ("rating", "human", "human_rating", "label", "score")


@dataclass(frozen=True)
class JudgeItem:
    """One question, its reference answer and the candidate answer to judge."""

    id: str
    question: str
    reference: str
    candidate: str

    def key(self, judge_id: str, prompt_id: str) -> str:
        """The cache key: judge, prompt version and the item's text (not its id)."""
        payload = json.dumps([judge_id, prompt_id, self.question, self.reference, self.candidate], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LabelledItem:
    """An item with a human rating (binary or ordinal)."""

    item: JudgeItem
    rating: float


def _text(value: Any, where: str, field: str) -> str | None:
    """A text field: ``None`` when absent or null, the string itself, else an error (never a repr)."""
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{where}, field {field!r}: expected text, got {type(value).__name__} {one_line(repr(value))}")


def _response(value: Any, where: str) -> str:
    """The generation in lm-eval's ``filtered_resps`` / ``resps`` (nested lists of strings)."""
    while isinstance(value, list):
        if not value:
            return ""
        value = value[0]
    return _text(value, where, "filtered_resps") or ""


def first_turn(messages: Any, role: str, where: str) -> str | None:
    """The content of the first turn with ``role`` in a ``messages`` list, verbatim (``None``: no such turn)."""
    if messages is None:
        return None
    if not isinstance(messages, list) or not all(isinstance(turn, dict) for turn in messages):
        raise InputError(f"{where}, field 'messages': expected a list of {{role, content}} turns")
    for index, turn in enumerate(messages):
        if turn.get("role") == role:
            return _text(turn.get("content"), where, f"messages[{index}].content") or ""
    return None


def question_and_reference(fields: dict[str, Any], where: str, target: Any = None) -> tuple[str, str]:
    """The question and reference as the authors read them.

    Question: the first user turn of ``messages``, else ``question``. Reference: the first
    assistant turn of ``messages``, else ``reference``, else ``target`` (lm-eval's sample target).
    A field that is there but is not text (a list, a number) is refused, never read as its repr.
    """
    question = first_turn(fields.get("messages"), "user", where)
    reference = first_turn(fields.get("messages"), "assistant", where)
    if question is None:
        question = _text(fields.get("question"), where, "question") or ""
    if reference is None:
        reference = _text(fields.get("reference"), where, "reference") or _text(target, where, "target") or ""
    if not question.strip():
        raise InputError(f"{where}: no question (field 'question', or a user turn in field 'messages')")
    if not reference.strip():
        raise InputError(f"{where}: no reference (field 'reference', or an assistant turn in field 'messages')")
    return question, reference


def item_from_row(row: dict[str, Any], where: str) -> JudgeItem:
    """An item from an lm-eval sample (``doc``, ``filtered_resps``) or a flat row (see question_and_reference)."""
    is_sample = isinstance(row.get("doc"), dict)
    fields = row["doc"] if is_sample else row
    item_id = str(fields.get("id", row.get("doc_id", where)))
    located = f"{where} (record {item_id!r})" if item_id != where else where
    question, reference = question_and_reference(fields, located, row.get("target") if is_sample else None)
    if is_sample:
        candidate = _response(row.get("filtered_resps", row.get("resps")), located)
    else:
        candidate = _text(row.get("candidate", ""), located, "candidate")
        if candidate is None:
            raise InputError(f"{located}, field 'candidate': null (give the answer to judge, or an empty string)")
    return JudgeItem(item_id, question, reference, candidate)


def read_items(path: Path) -> list[JudgeItem]:
    """Items of an lm-eval samples file or a plain JSONL of question / reference (or messages) / candidate.

    An empty file is an error: there is nothing to judge, and no aggregate to write."""
    items = [item_from_row(row, f"{path}#{i}") for i, row in enumerate(read_jsonl(path))]
    if not items:
        raise InputError(f"{path}: no items to judge (the file is empty)")
    return items


def item_name(path: Path | str, index: int, item: JudgeItem) -> str:
    """Where an item was read: ``FILE#ROW (record 'ID')``, as in the input errors."""
    where = f"{path}#{index}"
    return f"{where} (record {item.id!r})" if item.id != where else where


def _rating(value: Any, where: str, column: str) -> float:
    """A finite number, or a string that spells one."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InputError(f"{where}, field {column!r}: the rating {one_line(repr(value))} is not a finite number")
    return number


def read_labelled(path: Path, rater: str | None = None) -> list[LabelledItem]:
    """A CSV or JSONL with question, reference, candidate and a rating column, or an annotation folder
    (:func:`annotated_items`; ``rater`` is for folders only)."""
    if path.is_dir():
        return annotated_items(path, rater)
    if rater is not None:
        raise UsageError(f"{path}: a rater can be chosen in an annotation folder only ('medinj annotate sample')")
    if path.suffix == ".csv":
        try:
            rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
        except csv.Error as error:
            raise InputError(f"{path}: not a readable CSV ({error})") from None
    else:
        rows = read_jsonl(path)
    if not rows:
        raise InputError(f"{path}: no rated items (the file is empty, or holds only a header)")
    labelled = []
    for i, row in enumerate(rows):
        where = f"{path}#{i}"
        column = next((c for c in RATING_COLUMNS if row.get(c) not in (None, "")), None)
        if column is None:
            raise InputError(f"{where}: no rating column (one of {', '.join(RATING_COLUMNS)})")
        labelled.append(LabelledItem(item_from_row(row, where), _rating(row[column], where, column)))
    return labelled


def annotated_items(folder: Path, rater: str | None = None) -> list[LabelledItem]:
    """The rated items of an annotation folder (docs/HUMAN.md): question, reference and answer from
    ``items.jsonl``, rated with the mean over raters (or one ``rater``'s rating); unrated items are left out."""
    from lm_eval_medinj.annotate.folder import item_ratings, read_folder  # the "annotate" extra

    annotation = read_folder(folder)
    ratings = item_ratings(annotation, rater)
    if not ratings:
        raise InputError(f"{folder}: no item is rated yet ('medinj annotate serve {folder} --rater NAME')")
    return [
        LabelledItem(JudgeItem(name, item.question, item.reference, item.answer), ratings[name])
        for name, item in annotation.items.items()
        if name in ratings
    ]


def write_labelled(path: Path, items: list[LabelledItem]) -> None:
    """Write labelled items as JSONL (the format :func:`read_labelled` reads)."""
    with path.open("w", encoding="utf-8") as handle:
        for labelled in items:
            row = {
                "id": labelled.item.id,
                "question": labelled.item.question,
                "reference": labelled.item.reference,
                "candidate": labelled.item.candidate,
                "rating": labelled.rating,
            }
            handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
