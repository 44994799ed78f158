"""The canonical MedInjection-FR record shared by every reader, task and trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Provenance = Literal["native", "translated", "synthetic"]
TaskType = Literal["mcq", "mcqu", "oeq"]

Turn = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}

PROVENANCES: tuple[Provenance, ...] = ("native", "translated", "synthetic")
TASK_TYPES: tuple[TaskType, ...] = ("mcq", "mcqu", "oeq")
# Most options a multiple-answer question may have: choice scoring ranks all 2^n - 1 letter sets.
MAX_MCQ_OPTIONS = 10
MAX_OPTIONS = 26


class RecordError(ValueError):
    """A record that cannot be read or validated, located by file, record id and field."""

    def __init__(self, source: str, record_id: str, field_name: str, message: str):
        self.source = source
        self.record_id = record_id
        self.field_name = field_name
        self.message = message
        super().__init__(f"{source}: record {record_id!r}, field {field_name!r}: {message}")


@dataclass(frozen=True)
class MedRecord:
    """One question with its options and gold answer (letters) or reference text (OEQ).

    ``options`` keeps the option order of the source; letters are upper-case. ``gold`` holds
    the sorted gold letters for MCQ/MCQU and is empty for OEQ, where ``reference`` is set.
    ``messages`` is the record's own conversation, verbatim, when the source has one (Hub JSON
    ``messages``; ALL parquet ``instruction`` / ``context``, ``answer``): its non-assistant turns
    are the prompt the authors evaluated. Option texts may then be empty when only ``classes``
    names the letters, since the conversation carries the options. ``cluster`` names a group of
    questions that are not independent (MediQAl: one clinical case); a bootstrap over questions
    resamples clusters, and a question without one is its own. ``question_type`` is MediQAl's Understanding / Reasoning.
    ``benchmark`` and ``config`` say where the record was read (``mediqal`` / ``mcqm``, ...): ids are
    unique within one configuration only (MediQAl repeats them across mcqu, mcqm and oeq), so
    anything that joins records across files keys them by :attr:`uid`. ``data_revision`` names the
    data read: a Hub commit, or ``sha256:...`` of local files.
    """

    id: str
    provenance: Provenance
    origin: str
    task: TaskType
    question: str
    options: dict[str, str] = field(default_factory=dict)
    gold: tuple[str, ...] = ()
    reference: str | None = None
    context: str | None = None
    specialty: str | None = None
    messages: tuple[Turn, ...] = ()
    cluster: str | None = None
    question_type: str | None = None
    benchmark: str = "local"
    config: str = ""
    data_revision: str = ""

    @property
    def uid(self) -> str:
        """``<benchmark>/<configuration>/<id>``: unique across every file read."""
        return f"{self.benchmark}/{self.config or self.task}/{self.id}"

    @property
    def prompt_turns(self) -> list[Turn]:
        """The conversation without its assistant turns: what the model is asked."""
        return [dict(turn) for turn in self.messages if turn["role"] != "assistant"]

    def to_doc(self) -> dict[str, Any]:
        """A flat, Arrow-friendly dict for ``datasets.Dataset`` (lm-eval's document)."""
        return {
            "id": self.id,
            "provenance": self.provenance,
            "origin": self.origin,
            "task": self.task,
            "question": self.question,
            "option_letters": list(self.options),
            "option_texts": list(self.options.values()),
            "gold": list(self.gold),
            "reference": self.reference or "",
            "context": self.context or "",
            "specialty": self.specialty or "",
            "messages": [dict(turn) for turn in self.messages],
            "cluster": self.cluster or "",
            "question_type": self.question_type or "",
            "benchmark": self.benchmark,
            "config": self.config,
            "uid": self.uid,
            "data_revision": self.data_revision,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> MedRecord:
        """Inverse of :meth:`to_doc`."""
        return cls(
            id=doc["id"],
            provenance=doc["provenance"],
            origin=doc["origin"],
            task=doc["task"],
            question=doc["question"],
            options=dict(zip(doc["option_letters"], doc["option_texts"], strict=True)),
            gold=tuple(doc["gold"]),
            reference=doc["reference"] or None,
            context=doc["context"] or None,
            specialty=doc["specialty"] or None,
            messages=tuple(dict(turn) for turn in doc.get("messages") or ()),
            cluster=doc.get("cluster") or None,
            question_type=doc.get("question_type") or None,
            benchmark=doc.get("benchmark") or "local",
            config=doc.get("config") or "",
            data_revision=doc.get("data_revision") or "",
        )


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
    most = MAX_MCQ_OPTIONS if record.task == "mcq" else MAX_OPTIONS
    if len(record.options) > most:
        raise RecordError(
            source,
            record.id,
            "options",
            f"{len(record.options)} options; a {record.task} question may have at most {most} "
            f"(choice scoring ranks every one of the 2^n - 1 letter sets)",
        )
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
