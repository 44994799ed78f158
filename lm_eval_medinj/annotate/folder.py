"""An annotation folder (docs/HUMAN.md): reading it whole and validated, writing it once, and the ratings
per item and per model.

    ann/study.json         the scale, seed, n, strata, model labels (records.Study)
    ann/items.jsonl        blinded items: question, context, reference, answer (records.BlindItem)
    ann/key.jsonl          the un-blinding key: model, run, task, doc id, uid, judge (records.KeyEntry)
    ann/ratings/<rater>.jsonl   each rater's append-only journal (records.RatingLine; journal.py)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from lm_eval_medinj.annotate.journal import read_journal
from lm_eval_medinj.annotate.records import (
    RATER_NAME,
    BlindItem,
    JudgeVerdict,
    KeyEntry,
    RatingLine,
    Scale,
    Study,
    parse_line,
)
from lm_eval_medinj.errors import InputError

STUDY_FILE = "study.json"
ITEMS_FILE = "items.jsonl"
KEY_FILE = "key.jsonl"
RATINGS_DIR = "ratings"


@dataclass(frozen=True)
class AnnotationFolder:
    """A validated annotation folder; ``ratings`` is rater -> item -> that rater's last rating."""

    path: Path
    study: Study
    items: dict[str, BlindItem]
    key: dict[str, KeyEntry]
    ratings: dict[str, dict[str, RatingLine]]

    @property
    def scale(self) -> Scale:
        return self.study.scale

    @property
    def raters(self) -> list[str]:
        return sorted(self.ratings)


@dataclass(frozen=True)
class RatedItem:
    """A rated item, un-blinded: its model and lm-eval document, the mean human rating and the judge's verdict."""

    item: str
    model: str
    run: str
    task: str
    doc_id: int
    id: str
    uid: str
    rating: float
    n_raters: int
    judge: JudgeVerdict | None


def check_rater(name: str) -> str:
    """A rater name usable as a file name (letters, digits, ``.``, ``_``, ``-``; 64 at most)."""
    if not RATER_NAME.fullmatch(name):
        raise InputError(f"rater name {name!r}: use letters, digits, '.', '_' or '-' (64 at most, no leading dot)")
    return name


def journal_path(folder: Path, rater: str) -> Path:
    return folder / RATINGS_DIR / f"{check_rater(rater)}.jsonl"


def _lines(path: Path) -> list[tuple[str, bytes]]:
    if not path.is_file():
        raise InputError(f"{path}: missing (an annotation folder is written by 'medinj annotate sample')")
    return [
        (f"{path}:{line_no}", line)
        for line_no, line in enumerate(path.read_bytes().split(b"\n"), start=1)
        if line.strip()
    ]


def read_study(folder: Path) -> Study:
    path = folder / STUDY_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing (an annotation folder is written by 'medinj annotate sample')")
    return parse_line(Study, path.read_bytes(), str(path))


def _read_items(folder: Path) -> dict[str, BlindItem]:
    items: dict[str, BlindItem] = {}
    for where, line in _lines(folder / ITEMS_FILE):
        item = parse_line(BlindItem, line, where)
        if item.item in items:
            raise InputError(f"{where}: field 'item': {item.item!r} repeats")
        items[item.item] = item
    return items


def _read_key(folder: Path, study: Study, items: dict[str, BlindItem]) -> dict[str, KeyEntry]:
    key: dict[str, KeyEntry] = {}
    for where, line in _lines(folder / KEY_FILE):
        entry = parse_line(KeyEntry, line, where)
        if entry.item in key:
            raise InputError(f"{where}: field 'item': {entry.item!r} repeats")
        if entry.item not in items:
            raise InputError(f"{where}: field 'item': unknown item {entry.item!r} (not in {ITEMS_FILE})")
        if entry.model not in study.models:
            raise InputError(f"{where}: field 'model': {entry.model!r} is not one of the study's models")
        key[entry.item] = entry
    missing = [item for item in items if item not in key]
    if missing:
        raise InputError(f"{folder / KEY_FILE}: no entry for item {missing[0]!r} ({len(missing)} items missing)")
    return key


def read_ratings(folder: Path, scale: Scale, items: set[str]) -> dict[str, dict[str, RatingLine]]:
    """Rater (the journal's file name) -> item -> last rating, for every ``ratings/*.jsonl``."""
    ratings: dict[str, dict[str, RatingLine]] = {}
    for path in sorted((folder / RATINGS_DIR).glob("*.jsonl")):
        if not RATER_NAME.fullmatch(path.stem):
            raise InputError(f"{path}: not a rater's journal (rater names: letters, digits, '.', '_', '-')")
        ratings[path.stem] = read_journal(path, scale, items).ratings
    return ratings


def read_folder(path: Path) -> AnnotationFolder:
    """Read and validate a whole annotation folder; anything malformed is one InputError line."""
    if not path.is_dir():
        raise InputError(f"{path}: not an annotation folder (written by 'medinj annotate sample')")
    study = read_study(path)
    items = _read_items(path)
    if len(items) != study.n:
        raise InputError(f"{path / ITEMS_FILE}: {len(items)} items, but {STUDY_FILE} says n = {study.n}")
    key = _read_key(path, study, items)
    return AnnotationFolder(path, study, items, key, read_ratings(path, study.scale, set(items)))


def item_ratings(folder: AnnotationFolder, rater: str | None = None) -> dict[str, float]:
    """Item -> its rating: the mean over the raters who rated it, or one rater's when ``rater`` is named.

    Items nobody (or not that rater) rated are left out; they come in ``items.jsonl`` order."""
    if rater is not None:
        if rater not in folder.ratings:
            known = ", ".join(folder.raters) or "none yet"
            raise InputError(f"{folder.path / RATINGS_DIR}: no ratings by {rater!r} (raters: {known})")
        chosen = [folder.ratings[rater]]
    else:
        chosen = list(folder.ratings.values())
    means = {}
    for item in folder.items:
        given = [journal[item].rating for journal in chosen if item in journal]
        if given:
            means[item] = fmean(given)
    return means


def model_ratings(folder: AnnotationFolder, rater: str | None = None) -> dict[str, list[RatedItem]]:
    """Model label -> its rated items, un-blinded through the key (every study model, in study order)."""
    counts = {item: sum(item in journal for journal in folder.ratings.values()) for item in folder.items}
    by_model: dict[str, list[RatedItem]] = {model: [] for model in folder.study.models}
    for item, rating in item_ratings(folder, rater).items():
        entry = folder.key[item]
        by_model[entry.model].append(
            RatedItem(
                item=item,
                model=entry.model,
                run=entry.run,
                task=entry.task,
                doc_id=entry.doc_id,
                id=entry.id,
                uid=entry.uid,
                rating=rating,
                n_raters=1 if rater is not None else counts[item],
                judge=entry.judge,
            )
        )
    return by_model


def _write_jsonl(path: Path, rows: Sequence[BlindItem | KeyEntry]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_folder(out: Path, study: Study, items: Sequence[BlindItem], key: Sequence[KeyEntry]) -> None:
    """Write a new folder whole: built beside ``out``, then renamed into place (``out`` absent or empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not empty; give a new folder (ratings are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / STUDY_FILE).write_text(
            json.dumps(study.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _write_jsonl(staging / ITEMS_FILE, items)
        _write_jsonl(staging / KEY_FILE, key)
        (staging / RATINGS_DIR).mkdir()
        staging.chmod(0o755)
        os.replace(staging, out)  # atomic; replaces an empty folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
