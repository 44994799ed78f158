"""The canonical MedInjection-FR record shared by every reader, task and trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Provenance = Literal["native", "translated", "synthetic"]
TaskType = Literal["mcq", "mcqu", "oeq"]

Turn = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}

PROVENANCES: tuple[Provenance, ...] = ("native", "translated", "synthetic")
TASK_TYPES: tuple[TaskType, ...] = ("mcq", "mcqu", "oeq")


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
        )
