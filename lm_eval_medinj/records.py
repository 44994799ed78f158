"""The canonical MedInjection-FR record shared by every reader, task and trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Provenance = Literal["native", "translated", "synthetic"]
TaskType = Literal["mcq", "mcqu", "oeq"]

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
        )
