"""A file a user supplies on its own: each record's shape is recognised from its keys.

This is the one place that guesses a shape; a benchmark's own files are read by its own parser.
Shapes: this package's flat form (:meth:`MedRecord.to_doc`), MedInjection-FR's Hub records
(``messages``), the ALL parquet (``instruction`` / ``type``), FrenchMedMCQA (``answers`` /
``correct_answers``), MediQAl (``clinical_case`` / ``answer_a``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medinj.benchmarks import frenchmedmcqa, medinjection, mediqal
from lm_eval_medinj.benchmarks.fields import conversation, option_texts, parse_gold, record_id, task_type, text
from lm_eval_medinj.benchmarks.files import DATA_SUFFIXES, ReadReport, data_files, read_files
from lm_eval_medinj.records import MedRecord, Provenance, RecordError, TaskType


@dataclass(frozen=True)
class ReadOptions:
    """What the caller knows about a file: defaults for fields the records may not carry."""

    provenance: Provenance | None = None
    task: TaskType | None = None
    origin: str | None = None
    skip_invalid: bool = False


def parse_any(raw: Mapping[str, Any], source: str, index: int, options: ReadOptions = ReadOptions()) -> MedRecord:
    """One raw record of any supported shape."""
    if "option_letters" in raw and "task" in raw:  # this package's form, conversation included
        return parse_canonical(raw, source, index, options)
    if "messages" in raw:
        return medinjection.parse_hub_record(raw, source, index, options.provenance, options.task, options.origin)
    if "instruction" in raw and "type" in raw:
        return medinjection.parse_all_row(raw, source, index)
    if "answers" in raw and "correct_answers" in raw:
        return frenchmedmcqa.parse_record(raw, source, index)
    if "clinical_case" in raw or "answer_a" in raw:
        return mediqal.parse_record(raw, source, index, options.task)
    if "question" in raw and "task" in raw:
        return parse_canonical(raw, source, index, options)
    raise RecordError(
        source,
        record_id(raw, source, index),
        "<record>",
        "unknown record shape (keys: "
        + ", ".join(sorted(map(str, raw)))
        + "); expected MedInjection-FR 'messages'/'classes'/'answer', ALL parquet "
        "'instruction'/'type', FrenchMedMCQA 'answers'/'correct_answers', MediQAl "
        "'clinical_case'/'answer_a', or this package's 'question'/'task'",
    )


def parse_canonical(raw: Mapping[str, Any], source: str, index: int, options: ReadOptions = ReadOptions()) -> MedRecord:
    """This package's own flat form (:meth:`MedRecord.to_doc`)."""
    rid = record_id(raw, source, index)
    task = task_type(raw["task"], source, rid, "task")
    if "option_letters" in raw:
        letters, texts = raw["option_letters"], raw.get("option_texts", [])
        if not isinstance(letters, list) or not isinstance(texts, list):
            raise RecordError(source, rid, "option_letters", "expected lists of option letters and texts")
        choices = option_texts(dict(zip(letters, texts, strict=False)), source, rid, "option_texts")
    else:
        options_raw = raw.get("options") or {}
        if not isinstance(options_raw, dict):
            raise RecordError(source, rid, "options", "expected an object of letter -> text")
        choices = option_texts(options_raw, source, rid, "options")
    origin = text(raw, "origin", source, rid) or options.origin or "local"
    provenance = medinjection.provenance_of(raw.get("provenance")) or medinjection.provenance_of(origin)
    provenance = provenance or options.provenance
    if provenance is None:
        raise RecordError(source, rid, "provenance", "cannot tell the provenance (native, translated, synthetic)")
    common = dict(
        context=text(raw, "context", source, rid) or None,
        specialty=text(raw, "specialty", source, rid) or None,
        messages=conversation(raw.get("messages") or [], source, rid),
        cluster=text(raw, "cluster", source, rid) or None,
        question_type=text(raw, "question_type", source, rid) or None,
        benchmark=text(raw, "benchmark", source, rid) or "local",
        config=text(raw, "config", source, rid),
        data_revision=text(raw, "data_revision", source, rid),
    )
    question = text(raw, "question", source, rid)
    if task == "oeq":
        reference = text(raw, "reference", source, rid) or text(raw, "answer", source, rid)
        return MedRecord(rid, provenance, origin, task, question, reference=reference, **common)
    gold = parse_gold(raw.get("gold", raw.get("answer")), choices, source, rid)
    return MedRecord(rid, provenance, origin, task, question, choices, gold, **common)


def read_records(paths: Path | Iterable[Path], options: ReadOptions = ReadOptions()) -> ReadReport:
    """Read and validate every record of the given files (a folder: the data files directly in it)."""
    files: list[Path] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        if path.is_dir():
            files += data_files(path)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"no data files ({', '.join(DATA_SUFFIXES)}) in {paths}")
    return read_files(files, lambda raw, source, index: parse_any(raw, source, index, options), options.skip_invalid)
