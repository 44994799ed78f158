"""MediQAl (Bazoge, 2025; CC-BY-4.0): French national medical examinations, three configurations.

``mcqu`` (one answer), ``mcqm`` (several) and ``oeq`` (open questions, test split only), each a
folder of ``train``, ``validation`` and ``test`` files (JSON, JSON Lines or parquet) in
``data_dir`` or the Hub dataset ``ANR-MALADES/MediQAl``. Records: ``clinical_case`` (may be
null), ``question``, ``answer_a`` .. ``answer_e`` and ``correct_answers`` ("A,C,E" in the
authors' files; also "a, c", a list, or letters run together), ``task`` ("QCU" / "QCM"),
``medical_subject``, ``question_type`` (Understanding / Reasoning); OEQ: ``answer``. Ids repeat
across the configurations: a record's :attr:`~lm_eval_medinj.records.MedRecord.uid` holds its
configuration.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lm_eval_medinj.benchmarks import hub
from lm_eval_medinj.benchmarks.fields import parse_gold, record_id, task_type, text
from lm_eval_medinj.benchmarks.files import DATA_SUFFIXES, files_sha256, read_files
from lm_eval_medinj.benchmarks.layout import DataNotFoundError, Split, child_folder
from lm_eval_medinj.records import MedRecord, RecordError, TaskType

NAME = "mediqal"
ORIGIN = "MediQAl"
HUB_REPO = "ANR-MALADES/MediQAl"
CONFIGS: dict[TaskType, str] = {"mcqu": "mcqu", "mcq": "mcqm", "oeq": "oeq"}
_OPTION_KEY = re.compile(r"answer_[a-z]")


def cluster_of(case: str) -> str | None:
    """The cluster id of a clinical case (``None`` without one: the question is its own cluster)."""
    return f"{ORIGIN}:case:{hashlib.sha256(case.encode('utf-8')).hexdigest()[:16]}" if case else None


def _gold(value: Any, choices: Mapping[str, str], source: str, rid: str) -> tuple[str, ...]:
    """``correct_answers``: "A,C,E", "a, c", a list, or letters run together ("ace")."""
    if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z]{2,}\s*", value):
        letters = [letter.upper() for letter in value.strip()]
        if len(set(letters)) == len(letters) and all(letter in choices for letter in letters):
            return tuple(sorted(letters))
    return parse_gold(value, choices, source, rid, "correct_answers")


def parse_record(raw: Mapping[str, Any], source: str, index: int, task: TaskType | None = None) -> MedRecord:
    """One MediQAl record; ``task`` is its configuration's, when known."""
    rid = record_id(raw, source, index)
    case = text(raw, "clinical_case", source, rid)
    common = dict(
        context=case or None,
        specialty=text(raw, "medical_subject", source, rid) or None,
        question_type=text(raw, "question_type", source, rid) or None,
        cluster=cluster_of(case),
        benchmark=NAME,
    )
    question = text(raw, "question", source, rid)
    keys = sorted(key for key in raw if _OPTION_KEY.fullmatch(key))
    if not keys:
        if task not in (None, "oeq"):
            raise RecordError(source, rid, "answer_a", f"{task} question without options")
        return MedRecord(rid, "native", ORIGIN, "oeq", question, reference=text(raw, "answer", source, rid), **common)
    choices = {key[-1].upper(): text(raw, key, source, rid) for key in keys}
    gold = _gold(raw.get("correct_answers"), choices, source, rid)
    # The configuration's task wins over the record's own ``task``; validation then refuses a record
    # whose gold letters do not fit it (several in mcqu).
    own = task_type(raw["task"], source, rid, "task") if task is None and raw.get("task") not in (None, "") else None
    chosen = task or own or ("mcq" if len(gold) > 1 else "mcqu")
    if chosen == "oeq":
        raise RecordError(source, rid, "answer_a", "open question with options")
    return MedRecord(rid, "native", ORIGIN, chosen, question, choices, gold, **common)


def split_file(folder: Path | None, split: Split) -> Path | None:
    """``<split>.json`` (or .jsonl / .parquet) of one configuration folder; two candidates are an error."""
    if folder is None:
        return None
    found = [folder / f"{split}{suffix}" for suffix in DATA_SUFFIXES if (folder / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise DataNotFoundError(
            f"{folder} holds {len(found)} {split} files ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def load(
    task: TaskType,
    split: Split,
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    revision: hub.Revision = None,
) -> list[MedRecord]:
    """Records of one configuration (``mcqu``, ``mcqm`` for task ``mcq``, ``oeq``) and split."""
    config = CONFIGS[task]
    data_revision = None
    if data_dir is not None and data_dir.is_file():
        found = data_dir if split == "test" else None
    else:
        root, data_revision = hub.data_root(data_dir, HUB_REPO, [f"{config}/*"], revision)
        found = split_file(child_folder(root, config), split)
    if found is None:
        if split == "test":
            raise DataNotFoundError(
                f"no MediQAl {split} file for {config} in {data_dir or HUB_REPO} (looked for {config}/{split}.json)"
            )
        return []

    def parse(raw: Mapping[str, Any], source: str, index: int) -> MedRecord:
        return parse_record(raw, source, index, task)

    records = read_files([found], parse, skip_invalid).records
    revision_read = data_revision or files_sha256([found])
    return [replace(r, config=config, data_revision=revision_read) for r in records]
