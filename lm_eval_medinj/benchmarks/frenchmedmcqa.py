"""FrenchMedMCQA (Labrak et al., 2023; Apache-2.0): 3,105 pharmacy exam questions, one to five answers.

Files: ``train.json``, ``dev.json`` (the validation split) and ``test.json``, directly in
``data_dir`` or in the Hub dataset ``qanastek/frenchmedmcqa``; records ``question``, ``answers``
(letter -> text), ``correct_answers``, ``subject_name``. A question with one gold letter is MCQU,
with several MCQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lm_eval_medinj.benchmarks import hub
from lm_eval_medinj.benchmarks.fields import option_texts, parse_gold, record_id, text
from lm_eval_medinj.benchmarks.files import files_sha256, read_files
from lm_eval_medinj.benchmarks.layout import DataNotFoundError, Split
from lm_eval_medinj.records import MedRecord, RecordError, TaskType

NAME = "frenchmedmcqa"
ORIGIN = "FrenchMedMCQA"
HUB_REPO = "qanastek/frenchmedmcqa"
FILES: dict[Split, str] = {"train": "train.json", "validation": "dev.json", "test": "test.json"}


def parse_record(raw: Mapping[str, Any], source: str, index: int) -> MedRecord:
    """One FrenchMedMCQA question."""
    rid = record_id(raw, source, index)
    answers = raw.get("answers")
    if not isinstance(answers, dict):
        raise RecordError(source, rid, "answers", "expected an object of letter -> text")
    choices = dict(sorted(option_texts(answers, source, rid, "answers").items()))
    gold = parse_gold(raw.get("correct_answers"), choices, source, rid, "correct_answers")
    task: TaskType = "mcq" if len(gold) > 1 else "mcqu"
    return MedRecord(
        rid,
        "native",
        ORIGIN,
        task,
        text(raw, "question", source, rid),
        choices,
        gold,
        specialty=text(raw, "subject_name", source, rid) or None,
        benchmark=NAME,
    )


def load(
    task: TaskType,
    split: Split,
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    revision: hub.Revision = None,
) -> list[MedRecord]:
    """The questions of one split with one gold letter (``mcqu``) or several (``mcq``)."""
    name = FILES[split]
    if data_dir is not None and data_dir.is_file():
        if split != "test":
            return []
        files, data_revision = [data_dir], files_sha256([data_dir])
    else:
        root, data_revision = hub.data_root(data_dir, HUB_REPO, None, revision)
        path = root / name
        if data_dir is None and not path.is_file():
            raise DataNotFoundError(
                f"{HUB_REPO} holds a loading script and a zip archive, not {name}: download the dataset's "
                f'train.json, dev.json and test.json and pass their folder as --metadata \'{{"data_dir": "DIR"}}\''
            )
        if not path.is_file():
            if split != "test":
                return []
            deeper = sorted(str(p) for p in root.rglob(name))[:3]
            hint = f"; found deeper: {', '.join(deeper)} (give that folder as data_dir)" if deeper else ""
            raise DataNotFoundError(f"no FrenchMedMCQA {name} in {data_dir or HUB_REPO} (looked for {path}){hint}")
        files = [path]
        data_revision = data_revision or files_sha256(files)
    records = read_files(files, parse_record, skip_invalid).records
    return [replace(r, config=task, data_revision=data_revision) for r in records if r.task == task]
