"""Readers: every supported file shape into validated :class:`MedRecord` objects.

Shapes, detected per record:

- **hub**: MedInjection-FR per-subset JSON (``messages``, ``classes``, ``answer``); options
  come from ``classes`` or from "(A) ..." lines in the user message.
- **all**: the MedInjection-FR ALL parquet (``instruction``, ``context``, ``answer``, ``type``,
  ``origin``).
- **frenchmedmcqa**: FrenchMedMCQA JSON (``answers`` a-e, ``correct_answers``).
- **mediqal**: MediQAl JSON (``clinical_case``, ``question``, ``answer_a``..``answer_e`` and
  ``correct_answers``, or ``answer`` for open questions; ``medical_subject``, ``question_type``).
- **canonical**: this package's own flat form (:meth:`MedRecord.to_doc`).

Files are JSON (an array, or an object holding one under ``data``), JSONL or parquet. Any
record that cannot be read stops with a :class:`RecordError` naming file, record id and
field, unless ``skip_invalid`` is set: then it is dropped and counted in one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.records import (
    PROVENANCES,
    TASK_TYPES,
    MedRecord,
    Provenance,
    RecordError,
    TaskType,
)

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
MEDIQAL_ORIGIN = "MediQAl"
_OPTION_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[).])\s+(\S.*?)\s*$")
_ANSWER_LETTERS = re.compile(r"^\s*\(?([A-Za-z])\)?(?:\s*[,;/ ]\s*\(?([A-Za-z])\)?)*\s*\.?\s*$")
_TASK_ALIASES: dict[str, TaskType] = {
    "mcq": "mcq",
    "qcm": "mcq",
    "multiple": "mcq",
    "mcqm": "mcq",
    "mcqu": "mcqu",
    "qcu": "mcqu",
    "simple": "mcqu",
    "single": "mcqu",
    "oeq": "oeq",
    "qro": "oeq",
    "open": "oeq",
    "open-ended": "oeq",
}
_PROVENANCE_ALIASES: dict[str, Provenance] = {
    "native": "native",
    "natif": "native",
    "translated": "translated",
    "traduit": "translated",
    "translation": "translated",
    "synthetic": "synthetic",
    "synthétique": "synthetic",
    "synthetique": "synthetic",
}
# Source datasets named in the paper, for ALL-parquet rows whose origin is a dataset name.
_ORIGIN_PROVENANCE: dict[str, Provenance] = {
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


@dataclass(frozen=True)
class ReadOptions:
    """What the caller knows about a file: defaults for fields the records may not carry."""

    provenance: Provenance | None = None
    task: TaskType | None = None
    origin: str | None = None
    skip_invalid: bool = False


@dataclass
class ReadReport:
    """Records kept and errors skipped (only with ``skip_invalid``)."""

    records: list[MedRecord] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)


def iter_raw_records(path: Path) -> Iterator[dict[str, Any]]:
    """Raw dict records of one JSON, JSONL or parquet file."""
    source = str(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" or not text.lstrip().startswith(("[", "{")):
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _json_object(line, source, f"line {line_no}")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # A .json file holding JSON Lines.
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _json_object(line, source, f"line {line_no}")
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RecordError(source, "<file>", "<root>", "expected a JSON array of records")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise RecordError(source, f"#{index}", "<record>", "record is not a JSON object")
        yield item


def _json_object(line: str, source: str, where: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise RecordError(source, where, "<record>", f"invalid JSON: {error.msg}") from None
    if not isinstance(item, dict):
        raise RecordError(source, where, "<record>", "record is not a JSON object")
    return item


def data_files(path: Path) -> list[Path]:
    """The data files at ``path``: the file itself, or every data file below a folder."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in DATA_SUFFIXES and p.is_file())


def read_records(paths: Path | Iterable[Path], options: ReadOptions = ReadOptions()) -> ReadReport:
    """Read and validate every record of the given files (or folders)."""
    report = ReadReport()
    seen_ids: dict[str, str] = {}
    files = [f for p in ([paths] if isinstance(paths, Path) else paths) for f in data_files(p)]
    for path in files:
        for index, raw in enumerate(iter_raw_records(path)):
            try:
                record = parse_record(raw, str(path), index, options)
                if record.id in seen_ids:
                    raise RecordError(str(path), record.id, "id", f"duplicate id (first seen in {seen_ids[record.id]})")
            except RecordError as error:
                if not options.skip_invalid:
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


def parse_record(raw: Mapping[str, Any], source: str, index: int, options: ReadOptions) -> MedRecord:
    """One raw record of any supported shape into a validated record."""
    record_id = _record_id(raw, source, index)
    if "option_letters" in raw and "task" in raw:  # this package's form, conversation included
        record = _from_canonical(raw, source, record_id, options)
    elif "messages" in raw:
        record = _from_hub(raw, source, record_id, options)
    elif "instruction" in raw and "type" in raw:
        record = _from_all_parquet(raw, source, record_id, options)
    elif "answers" in raw and "correct_answers" in raw:
        record = _from_frenchmedmcqa(raw, source, record_id, options)
    elif "clinical_case" in raw or "answer_a" in raw:
        record = _from_mediqal(raw, source, record_id, options)
    elif "question" in raw and "task" in raw:
        record = _from_canonical(raw, source, record_id, options)
    else:
        raise RecordError(
            source,
            record_id,
            "<record>",
            "unknown record shape (keys: "
            + ", ".join(sorted(raw))
            + "); expected MedInjection-FR 'messages'/'classes'/'answer', ALL parquet "
            "'instruction'/'type', FrenchMedMCQA 'answers'/'correct_answers', MediQAl "
            "'clinical_case'/'answer_a', or this package's 'question'/'task'",
        )
    validate_record(record, source)
    return record


def validate_record(record: MedRecord, source: str) -> None:
    """Raise :class:`RecordError` for a record no task could score."""
    if not record.question.strip():
        raise RecordError(source, record.id, "question", "empty question")
    if record.task == "oeq":
        if not (record.reference or "").strip():
            raise RecordError(source, record.id, "answer", "open question with an empty reference")
        return
    if len(record.options) < 2:
        raise RecordError(source, record.id, "options", f"{len(record.options)} option(s); at least 2 needed")
    if not record.messages:  # option texts are needed where we render the prompt ourselves
        for letter, text in record.options.items():
            if not text.strip():
                raise RecordError(source, record.id, "options", f"option {letter} is empty")
    if not record.gold:
        raise RecordError(source, record.id, "answer", "no gold answer")
    unknown = [letter for letter in record.gold if letter not in record.options]
    if unknown:
        raise RecordError(
            source,
            record.id,
            "answer",
            f"gold letter(s) {', '.join(unknown)} not among options {', '.join(record.options)}",
        )
    if record.task == "mcqu" and len(record.gold) != 1:
        raise RecordError(source, record.id, "answer", f"single-answer question with {len(record.gold)} gold letters")


# --------------------------------------------------------------------------- field helpers


def _record_id(raw: Mapping[str, Any], source: str, index: int) -> str:
    for key in ("id", "ID", "uid", "question_id", "qid"):
        if raw.get(key) not in (None, ""):
            return str(raw[key])
    return f"{Path(source).stem}#{index}"


def _text(raw: Mapping[str, Any], key: str, source: str, record_id: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(source, record_id, key, f"expected text, got {type(value).__name__}")
    return value.strip()


def _task(value: Any, source: str, record_id: str, field_name: str) -> TaskType:
    task = _TASK_ALIASES.get(str(value).strip().lower())
    if task is None:
        raise RecordError(source, record_id, field_name, f"unknown task type {value!r}; expected one of {TASK_TYPES}")
    return task


def _provenance(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions, origin: str) -> Provenance:
    for value in (raw.get("provenance"), origin):
        if value:
            key = str(value).strip().lower()
            found = _PROVENANCE_ALIASES.get(key) or _ORIGIN_PROVENANCE.get(key)
            if found:
                return found
    if options.provenance:
        return options.provenance
    raise RecordError(
        source,
        record_id,
        "origin",
        f"cannot tell the provenance ({', '.join(PROVENANCES)}) from origin {origin!r}; "
        "read this file through a subset folder (Native/, Translated/, Synthetic/)",
    )


def split_options(text: str) -> tuple[str, dict[str, str]]:
    """Split a prompt into question text and its "(A) ..." option lines.

    Option lines must run A, B, C... without gaps; other lines stay in the question.
    """
    question_lines: list[str] = []
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = _OPTION_LINE.match(line)
        expected = chr(ord("A") + len(options))
        if match and (match.group(1) or match.group(2)) == expected:
            options[expected] = match.group(3)
        else:
            question_lines.append(line)
    if len(options) < 2:
        return text.strip(), {}
    return "\n".join(question_lines).strip(), options


def parse_gold(
    value: Any, options: Mapping[str, str], source: str, record_id: str, field_name: str = "answer"
) -> tuple[str, ...]:
    """Gold letters from a letter string ("A, C", "(b)"), a list, indices, or an option text."""
    if isinstance(value, str):
        match = _ANSWER_LETTERS.match(value)
        if match:
            letters = re.findall(r"[A-Za-z]", value)
            return tuple(sorted({letter.upper() for letter in letters}))
        option_line = _OPTION_LINE.match(value)
        if option_line and (option_line.group(1) or option_line.group(2)) in options:
            return (option_line.group(1) or option_line.group(2),)
        by_text = [letter for letter, text in options.items() if text.strip() == value.strip()]
        if by_text:
            return tuple(by_text)
    elif isinstance(value, list) and value:
        letters: set[str] = set()
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 26:
                letters.add(chr(ord("A") + item))
            elif isinstance(item, str) and len(item.strip().strip("()")) == 1:
                letters.add(item.strip().strip("()").upper())
            else:
                raise RecordError(source, record_id, field_name, f"unparseable answer item {item!r}")
        return tuple(sorted(letters))
    raise RecordError(source, record_id, field_name, f"unparseable answer {value!r}")


# --------------------------------------------------------------------------- shapes


def _from_hub(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions) -> MedRecord:
    messages = _conversation(raw["messages"], source, record_id)
    user = [m["content"] for m in messages if m["role"] == "user"]
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    if not user:
        raise RecordError(source, record_id, "messages", "no user message")
    question, parsed_options = split_options(user[-1])
    choices = _hub_options(raw.get("classes"), parsed_options, source, record_id)
    answer = raw.get("answer", assistant[-1] if assistant else None)
    origin = str(raw.get("origin") or raw.get("source") or options.origin or "MedInjection-FR")
    provenance = _provenance(raw, source, record_id, options, origin)
    context = _text(raw, "context", source, record_id) or None
    specialty = _text(raw, "specialty", source, record_id) or None
    if choices:
        gold = parse_gold(answer, choices, source, record_id)
        task = options.task or ("mcq" if len(gold) > 1 else "mcqu")
        return MedRecord(
            record_id,
            provenance,
            origin,
            task,
            question,
            choices,
            gold,
            context=context,
            specialty=specialty,
            messages=messages,
        )
    if options.task not in (None, "oeq"):
        raise RecordError(source, record_id, "classes", f"{options.task} question without options")
    if not isinstance(answer, str):
        raise RecordError(source, record_id, "answer", f"expected reference text, got {answer!r}")
    return MedRecord(
        record_id,
        provenance,
        origin,
        "oeq",
        question,
        reference=answer.strip(),
        context=context,
        specialty=specialty,
        messages=messages,
    )


def _conversation(value: Any, source: str, record_id: str) -> tuple[dict[str, str], ...]:
    """The record's turns as {role, content} text pairs, verbatim."""
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        raise RecordError(source, record_id, "messages", "expected a list of {role, content} objects with text values")
    return tuple({"role": m["role"], "content": m["content"]} for m in value)


def _hub_options(classes: Any, parsed: dict[str, str], source: str, record_id: str) -> dict[str, str]:
    if classes is None or classes == []:
        return parsed
    if isinstance(classes, dict):
        return {str(k).strip().upper(): str(v).strip() for k, v in classes.items()}
    if not isinstance(classes, list):
        raise RecordError(source, record_id, "classes", f"expected a list or object, got {classes!r}")
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
                record_id,
                "classes",
                f"option(s) {', '.join(missing)} listed in classes but not found as '(X) ...' "
                "lines in the user message",
            )
        return {letter: parsed[letter] for letter in letters}
    return {chr(ord("A") + i): str(text).strip() for i, text in enumerate(classes)}


def _from_all_parquet(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions) -> MedRecord:
    task = _task(raw["type"], source, record_id, "type")
    instruction = _text(raw, "instruction", source, record_id)
    context = _text(raw, "context", source, record_id)
    question, choices = split_options(instruction)
    if not choices and context:
        context_rest, choices = split_options(context)
        context = context_rest
    origin = str(raw.get("origin") or options.origin or "MedInjection-FR/ALL")
    provenance = _provenance(raw, source, record_id, options, origin)
    messages = _all_parquet_conversation(raw, source, record_id)
    if task == "oeq":
        return MedRecord(
            record_id,
            provenance,
            origin,
            task,
            question,
            reference=_text(raw, "answer", source, record_id),
            context=context or None,
            messages=messages,
        )
    gold = parse_gold(raw.get("answer"), choices, source, record_id)
    return MedRecord(
        record_id, provenance, origin, task, question, choices, gold, context=context or None, messages=messages
    )


def _all_parquet_conversation(raw: Mapping[str, Any], source: str, record_id: str) -> tuple[dict[str, str], ...]:
    """The user turn ``instruction`` (then ``context`` after a blank line, if any), the answer turn."""
    user = "\n\n".join(part for part in (raw.get("instruction"), raw.get("context")) if isinstance(part, str) and part)
    turns = [{"role": "user", "content": user}]
    if isinstance(raw.get("answer"), str):
        turns.append({"role": "assistant", "content": raw["answer"]})
    return tuple(turns)


def _from_frenchmedmcqa(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions) -> MedRecord:
    answers = raw["answers"]
    if not isinstance(answers, dict):
        raise RecordError(source, record_id, "answers", "expected an object of letter -> text")
    choices = {str(k).strip().upper(): str(v).strip() for k, v in sorted(answers.items())}
    gold = parse_gold(raw["correct_answers"], choices, source, record_id, "correct_answers")
    task: TaskType = "mcq" if len(gold) > 1 else "mcqu"
    return MedRecord(
        record_id,
        "native",
        "FrenchMedMCQA",
        task,
        _text(raw, "question", source, record_id),
        choices,
        gold,
        specialty=_text(raw, "subject_name", source, record_id) or None,
    )


def _from_mediqal(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions) -> MedRecord:
    case = _text(raw, "clinical_case", source, record_id)
    common = dict(
        context=case or None,
        specialty=_text(raw, "medical_subject", source, record_id) or None,
        question_type=_text(raw, "question_type", source, record_id) or None,
        cluster=f"{MEDIQAL_ORIGIN}:case:{hashlib.sha256(case.encode('utf-8')).hexdigest()[:16]}" if case else None,
    )
    question = _text(raw, "question", source, record_id)
    keys = sorted(key for key in raw if re.fullmatch(r"answer_[a-z]", key))
    if not keys:
        if options.task not in (None, "oeq"):
            raise RecordError(source, record_id, "answer_a", f"{options.task} question without options")
        reference = _text(raw, "answer", source, record_id)
        return MedRecord(record_id, "native", MEDIQAL_ORIGIN, "oeq", question, reference=reference, **common)
    choices = {key[-1].upper(): _text(raw, key, source, record_id) for key in keys}
    gold = _mediqal_gold(raw.get("correct_answers"), choices, source, record_id)
    task = options.task or (_task(raw["task"], source, record_id, "task") if raw.get("task") else None)
    if task == "oeq":
        raise RecordError(source, record_id, "answer_a", "open question with options")
    return MedRecord(
        record_id,
        "native",
        MEDIQAL_ORIGIN,
        task or ("mcq" if len(gold) > 1 else "mcqu"),
        question,
        choices,
        gold,
        **common,
    )


def _mediqal_gold(value: Any, choices: Mapping[str, str], source: str, record_id: str) -> tuple[str, ...]:
    """Gold letters of ``correct_answers``: "a,c", "A, C", a list, or letters run together ("ac")."""
    if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z]{2,}\s*", value):
        letters = [letter.upper() for letter in value.strip()]
        if len(set(letters)) == len(letters) and all(letter in choices for letter in letters):
            return tuple(sorted(letters))
    return parse_gold(value, choices, source, record_id, "correct_answers")


def _from_canonical(raw: Mapping[str, Any], source: str, record_id: str, options: ReadOptions) -> MedRecord:
    task = _task(raw["task"], source, record_id, "task")
    if "option_letters" in raw:
        choices = dict(zip(raw["option_letters"], raw.get("option_texts", []), strict=False))
    else:
        choices = {str(k).upper(): str(v) for k, v in (raw.get("options") or {}).items()}
    origin = str(raw.get("origin") or options.origin or "local")
    provenance = _provenance(raw, source, record_id, options, origin)
    common = dict(
        context=_text(raw, "context", source, record_id) or None,
        specialty=_text(raw, "specialty", source, record_id) or None,
        messages=_conversation(raw.get("messages") or [], source, record_id),
        cluster=_text(raw, "cluster", source, record_id) or None,
        question_type=_text(raw, "question_type", source, record_id) or None,
    )
    question = _text(raw, "question", source, record_id)
    if task == "oeq":
        reference = _text(raw, "reference", source, record_id) or _text(raw, "answer", source, record_id)
        return MedRecord(record_id, provenance, origin, task, question, reference=reference, **common)
    gold = parse_gold(raw.get("gold", raw.get("answer")), choices, source, record_id)
    return MedRecord(record_id, provenance, origin, task, question, choices, gold, **common)
