"""MedInjection-FR (LREC 2026): its Hub datasets, where their files are, and how their records read.

Two layouts, each read by its own parser:

- **the per-subset Hub datasets** ``MedInjection-FR/{Native,Translated,Synthetic}``:
  ``<Subset>/<Split>/<task>/*.json`` (``Test/mcqu/mcqu_test.json``, ...), records with
  ``messages`` (the conversation), ``classes`` (the option letters, or their texts) and
  ``answer``. The folder says the provenance and the task; a record that says otherwise is
  refused, never dropped.
- **the ALL parquet** ``MedInjection-FR/ALL`` (``data/<split>-*.parquet``, or the files directly
  in ``data_dir``): rows ``instruction``, ``context``, ``answer``, ``type``, ``origin``; the
  provenance comes from ``origin``. A task reads the rows of its provenance and type: the others
  are counted in a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lm_eval_medinj.benchmarks import hub
from lm_eval_medinj.benchmarks.fields import (
    conversation,
    option_texts,
    parse_gold,
    record_id,
    split_options,
    task_type,
    text,
)
from lm_eval_medinj.benchmarks.files import Parser, data_files, files_sha256, read_files
from lm_eval_medinj.benchmarks.layout import DataNotFoundError, Split, child_folder
from lm_eval_medinj.records import PROVENANCES, MedRecord, Provenance, RecordError, TaskType

log = logging.getLogger(__name__)

NAME = "medinjection"
HUB_REPOS: dict[Provenance, str] = {
    "native": "MedInjection-FR/Native",
    "translated": "MedInjection-FR/Translated",
    "synthetic": "MedInjection-FR/Synthetic",
}
ALL_REPO = "MedInjection-FR/ALL"
SPLIT_FOLDERS: dict[Split, str] = {"train": "Train", "validation": "Validation", "test": "Test"}
PROVENANCE_ALIASES: dict[str, Provenance] = {
    "native": "native",
    "natif": "native",
    "translated": "translated",
    "traduit": "translated",
    "translation": "translated",
    "synthetic": "synthetic",
    "synthétique": "synthetic",
    "synthetique": "synthetic",
}
# Source datasets named in the paper, for rows whose origin is a dataset name.
ORIGIN_PROVENANCE: dict[str, Provenance] = {
    "frenchmedmcqa": "native",
    "mediqal": "native",
    "s-editions": "native",
    "frbmedqa": "native",
    "medqa": "translated",
    "medmcqa": "translated",
    "pubmedqa": "translated",
    "medxpertqa": "translated",
    "mmlu": "translated",
    "gpt-4o": "synthetic",
    "synthetic": "synthetic",
}


def provenance_of(value: Any) -> Provenance | None:
    """The provenance a ``provenance`` or ``origin`` value names, if it names one."""
    if not isinstance(value, str) or not value.strip():
        return None
    key = value.strip().lower()
    return PROVENANCE_ALIASES.get(key) or ORIGIN_PROVENANCE.get(key)


def config_name(provenance: Provenance, task: TaskType) -> str:
    return f"{provenance}-{task}"


# --------------------------------------------------------------------------- records


def _hub_options(classes: Any, parsed: dict[str, str], source: str, rid: str) -> dict[str, str]:
    if classes is None or classes == []:
        return parsed
    if isinstance(classes, dict):
        return option_texts(classes, source, rid, "classes")
    if not isinstance(classes, list):
        raise RecordError(source, rid, "classes", f"expected a list or object, got {type(classes).__name__}")
    if all(isinstance(c, str) and len(c.strip().strip("()")) == 1 for c in classes):
        letters = [c.strip().strip("()").upper() for c in classes]
        if not parsed:
            # The options are in the user turn in a form we do not parse; the verbatim
            # conversation carries them, so the letters suffice (texts stay empty).
            return dict.fromkeys(letters, "")
        missing = [letter for letter in letters if letter not in parsed]
        if missing:
            raise RecordError(
                source,
                rid,
                "classes",
                f"option(s) {', '.join(missing)} listed in classes but not found as '(X) ...' "
                "lines in the user message",
            )
        return {letter: parsed[letter] for letter in letters}
    return option_texts({chr(ord("A") + i): c for i, c in enumerate(classes)}, source, rid, "classes")


def parse_hub_record(
    raw: Mapping[str, Any],
    source: str,
    index: int,
    provenance: Provenance | None = None,
    task: TaskType | None = None,
    origin: str | None = None,
) -> MedRecord:
    """One record of a per-subset Hub file; ``provenance`` and ``task`` are its folder's, when known."""
    rid = record_id(raw, source, index)
    messages = conversation(raw.get("messages"), source, rid)
    user = [m["content"] for m in messages if m["role"] == "user"]
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    if not user:
        raise RecordError(source, rid, "messages", "no user message")
    question, parsed_options = split_options(user[-1])
    choices = _hub_options(raw.get("classes"), parsed_options, source, rid)
    answer = raw["answer"] if "answer" in raw else (assistant[-1] if assistant else None)
    record_origin = text(raw, "origin", source, rid) or text(raw, "source", source, rid) or origin or NAME
    record_provenance = _provenance(raw, source, rid, record_origin, provenance)
    context = text(raw, "context", source, rid) or None
    specialty = text(raw, "specialty", source, rid) or None
    common = dict(
        context=context, specialty=specialty, messages=messages, benchmark=NAME, config=""
    )  # config set by load()
    if choices:
        gold = parse_gold(answer, choices, source, rid)
        chosen = task or ("mcq" if len(gold) > 1 else "mcqu")
        return MedRecord(rid, record_provenance, record_origin, chosen, question, choices, gold, **common)
    if task not in (None, "oeq"):
        raise RecordError(source, rid, "classes", f"{task} question without options")
    if not isinstance(answer, str):
        raise RecordError(source, rid, "answer", f"expected reference text, got {type(answer).__name__}")
    return MedRecord(rid, record_provenance, record_origin, "oeq", question, reference=answer.strip(), **common)


def _provenance(raw: Mapping[str, Any], source: str, rid: str, origin: str, folder: Provenance | None) -> Provenance:
    """The folder's provenance, checked against the record's own ``provenance`` / ``origin``; else theirs."""
    for field_name, value in (("provenance", raw.get("provenance")), ("origin", origin)):
        said = provenance_of(value)
        if said is None:
            continue
        if folder is not None and said != folder:
            raise RecordError(
                source, rid, field_name, f"{value!r} is {said} data, but the record is in the {folder} subset's folder"
            )
        return said
    if folder is not None:
        return folder
    raise RecordError(
        source,
        rid,
        "origin",
        f"cannot tell the provenance ({', '.join(PROVENANCES)}) from origin {origin!r}; "
        "read this file through a subset folder (Native/, Translated/, Synthetic/)",
    )


def parse_all_row(raw: Mapping[str, Any], source: str, index: int) -> MedRecord:
    """One row of the ALL parquet: the provenance comes from its ``origin``."""
    rid = record_id(raw, source, index)
    task = task_type(raw.get("type"), source, rid, "type")
    instruction = text(raw, "instruction", source, rid)
    context = text(raw, "context", source, rid)
    question, choices = split_options(instruction)
    if not choices and context:
        context_rest, choices = split_options(context)
        context = context_rest
    origin = text(raw, "origin", source, rid) or "MedInjection-FR/ALL"
    provenance = _provenance(raw, source, rid, origin, None)
    user = "\n\n".join(part for part in (raw.get("instruction"), raw.get("context")) if isinstance(part, str) and part)
    turns = [{"role": "user", "content": user}]
    if isinstance(raw.get("answer"), str):
        turns.append({"role": "assistant", "content": raw["answer"]})
    common = dict(context=context or None, messages=tuple(turns), benchmark=NAME)
    if task == "oeq":
        reference = text(raw, "answer", source, rid)
        return MedRecord(rid, provenance, origin, task, question, reference=reference, **common)
    gold = parse_gold(raw.get("answer"), choices, source, rid)
    return MedRecord(rid, provenance, origin, task, question, choices, gold, **common)


# --------------------------------------------------------------------------- files


def _all_parquet(data_dir: Path, split: Split) -> list[Path]:
    """``<split>-*.parquet`` in ``data_dir/data`` (the Hub's ALL layout) or in ``data_dir`` itself."""
    for folder in (data_dir / "data", data_dir):
        found = sorted(folder.glob(f"{split}-*.parquet")) if folder.is_dir() else []
        if found:
            return found
    return []


def load(
    task: TaskType,
    split: Split,
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    provenances: Sequence[Provenance] = ("native", "translated"),
    revision: hub.Revision = None,
    file_parser: Parser | None = None,
) -> list[MedRecord]:
    """Records of one task and split, pooled over ``provenances`` in that order (``file_parser``: see
    :func:`load_subset`)."""
    return [
        record
        for provenance in provenances
        for record in load_subset(provenance, task, split, data_dir, skip_invalid, revision, file_parser)
    ]


def load_subset(
    provenance: Provenance,
    task: TaskType,
    split: Split,
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    revision: hub.Revision = None,
    file_parser: Parser | None = None,
) -> list[MedRecord]:
    """Records of one subset, task and split: the Hub, a local Hub layout, the ALL parquet or one file.

    A single file given as ``data_dir`` is the test split, its records read by ``file_parser`` (the
    registry passes :func:`lm_eval_medinj.benchmarks.single_file.parse_any`, which recognises shapes).
    """
    subset, split_folder = HUB_REPOS[provenance].split("/")[1], SPLIT_FOLDERS[split]
    looked_for = f"{subset}/{split_folder}/{task}/*.json"
    if data_dir is None:
        snapshot = hub.snapshot(HUB_REPOS[provenance], [f"{split_folder}/{task}/*"], revision)
        folder = snapshot.path / split_folder / task
        files, data_revision, where = (data_files(folder) if folder.is_dir() else []), snapshot.revision, snapshot.repo
        return _read_subset(files, provenance, task, split, skip_invalid, data_revision, where, looked_for)
    if data_dir.is_file():
        if split != "test":
            return []
        if file_parser is None:
            raise DataNotFoundError(f"data_dir {data_dir} is a file: give a folder in the Hub layout")
        return _read_mixed([data_dir], file_parser, provenance, task, split, skip_invalid)
    subset_dir = child_folder(data_dir, subset)
    if subset_dir is not None:
        split_dir = child_folder(subset_dir, split_folder)
        folder = child_folder(split_dir, task) if split_dir else None
        files = data_files(folder) if folder else []
        return _read_subset(files, provenance, task, split, skip_invalid, None, str(data_dir), looked_for)
    parquet = _all_parquet(data_dir, split)
    if not parquet:
        if split == "test":
            raise DataNotFoundError(
                f"no {provenance} {split} files for task {task} in {data_dir} (looked for {looked_for}, "
                f"or data/{split}-*.parquet for the ALL dataset)"
            )
        return []
    return _read_mixed(parquet, parse_all_row, provenance, task, split, skip_invalid)


def _read_subset(
    files: list[Path],
    provenance: Provenance,
    task: TaskType,
    split: Split,
    skip_invalid: bool,
    data_revision: str | None,
    where: str,
    looked_for: str,
) -> list[MedRecord]:
    if not files:
        if split == "test":
            raise DataNotFoundError(
                f"no {provenance} {split} files for task {task} in {where} (looked for {looked_for})"
            )
        log.info("no %s %s files for %s in %s", provenance, split, task, where)
        return []

    def parse(raw: Mapping[str, Any], source: str, index: int) -> MedRecord:
        return parse_hub_record(raw, source, index, provenance, task, HUB_REPOS[provenance])

    records = read_files(files, parse, skip_invalid).records
    revision = data_revision or files_sha256(files)
    return [replace(r, config=config_name(provenance, task), data_revision=revision) for r in records]


def _read_mixed(
    files: list[Path], parse: Parser, provenance: Provenance, task: TaskType, split: Split, skip_invalid: bool
) -> list[MedRecord]:
    """Rows of the ALL parquet (or a single user file) filtered to one provenance and task, the rest counted."""
    records = read_files(files, parse, skip_invalid).records
    kept = [r for r in records if r.task == task and r.provenance == provenance]
    log.info(
        "%s: %d of %d %s records are %s %s; the other %d belong to other tasks or provenances",
        ", ".join(map(str, files)), len(kept), len(records), split, provenance, task, len(records) - len(kept),
    )  # fmt: skip
    revision = files_sha256(files)
    return [replace(r, benchmark=NAME, config=config_name(provenance, task), data_revision=revision) for r in kept]
