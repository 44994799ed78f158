"""The files of an annotation folder, as strict schemas (pydantic): ``study.json``, one line of
``items.jsonl``, ``key.jsonl`` and ``ratings/<rater>.jsonl``.

Every model forbids unknown fields and coercion (a rating ``"1"`` or ``true`` is refused);
:func:`parse_line` turns a validation error into one :class:`~lm_eval_medinj.errors.InputError` line
naming the file, line and field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from lm_eval_medinj.errors import InputError

FORMAT = "medinj-annotation/1"
ScaleKind = Literal["binary", "likert5"]
ITEM_ID = re.compile(r"it-\d{4,}")
RATER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

SCALE_VALUES: dict[str, tuple[int, ...]] = {"binary": (0, 1), "likert5": (1, 2, 3, 4, 5)}
SCALE_LABELS: dict[str, dict[str, str]] = {
    "binary": {"0": "Non équivalente", "1": "Équivalente"},
    "likert5": {
        "1": "Pas du tout équivalente",
        "2": "Peu équivalente",
        "3": "Partiellement équivalente",
        "4": "Largement équivalente",
        "5": "Tout à fait équivalente",
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _iso_8601(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date and time") from None
    return value


class Scale(_Strict):
    """The rating scale: binary (0 not equivalent, 1 equivalent, as the judge decides) or 1-5."""

    kind: ScaleKind
    values: tuple[int, ...]
    labels: dict[str, str]

    @model_validator(mode="after")
    def _consistent(self) -> Scale:
        if self.values != SCALE_VALUES[self.kind]:
            raise ValueError(f"a {self.kind} scale has values {list(SCALE_VALUES[self.kind])}, not {list(self.values)}")
        if set(self.labels) != {str(v) for v in self.values}:
            raise ValueError(f"labels must name exactly the values {list(self.values)}")
        return self

    @classmethod
    def of(cls, kind: str) -> Scale:
        """The package's scale of that kind, with its French labels."""
        return cls(kind=kind, values=SCALE_VALUES[kind], labels=SCALE_LABELS[kind])

    @property
    def midpoint(self) -> float:
        """Ratings above it count as equivalent: 0.5 on the binary scale, 3 on the 1-5 scale."""
        return (self.values[0] + self.values[-1]) / 2

    @property
    def ordinal(self) -> bool:
        return self.kind == "likert5"

    def check(self, rating: int) -> None:
        """Raise ``ValueError`` unless ``rating`` is one of the scale's values."""
        if rating not in self.values:
            raise ValueError(f"{rating} is not on the {self.kind} scale {list(self.values)}")


class Study(_Strict):
    """``study.json``: the scale, how the items were drawn, and from which models."""

    format: Literal["medinj-annotation/1"]
    scale: Scale
    seed: int
    n: int = Field(ge=1)
    stratify: tuple[Literal["model", "judge_verdict"], ...]
    models: tuple[str, ...] = Field(min_length=1)
    created_at: str

    _created_at = field_validator("created_at")(_iso_8601)

    @field_validator("models")
    @classmethod
    def _unique(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(models)) != len(models):
            raise ValueError("model labels repeat")
        return models


class BlindItem(_Strict):
    """One line of ``items.jsonl``: what the rater sees (nothing that names the model)."""

    item: str = Field(pattern=ITEM_ID.pattern)
    question: str = Field(min_length=1)
    context: str | None
    reference: str
    answer: str


class JudgeVerdict(_Strict):
    """The judge's decision on an item, where judge/score.py rows were found beside the samples."""

    p_equivalent: float = Field(ge=0, le=1)
    verdict: StrictInt = Field(ge=0, le=1)  # 0 or 1; not true/false, not 1.0


class KeyEntry(_Strict):
    """One line of ``key.jsonl``: which model, run and lm-eval document an item comes from."""

    item: str = Field(pattern=ITEM_ID.pattern)
    model: str
    run: str
    task: str
    doc_id: int
    id: str
    uid: str
    judge: JudgeVerdict | None


class RatingLine(_Strict):
    """One line of ``ratings/<rater>.jsonl``: a rating given (the last line for an item wins)."""

    item: str = Field(pattern=ITEM_ID.pattern)
    rating: int
    comment: str
    at: str

    _at = field_validator("at")(_iso_8601)


M = TypeVar("M", bound=BaseModel)


def validation_message(error: ValidationError) -> str:
    """The first problem of a validation error as ``field 'x': message`` (or the message alone)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"field {field!r}: {message}" if field else message


def parse_line(model: type[M], text: str | bytes, where: str) -> M:
    """``text`` (one JSON document) as ``model``; a bad one is an InputError naming ``where`` and the field."""
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        raise InputError(f"{where}: {validation_message(error)}") from None
