"""The test questions a contamination audit flagged (``medinj overlap``'s ``overlap.json``), for ``--exclude``.

The file: ``{"settings": {...}, "flagged": [{"task": "<lm-eval task>", "id": "<doc id>",
"uid": "<doc uid, when present>", "matches": [{"id": ..., "kind": "exact"|"ngram"|"near", ...}]}]}``
(further keys are kept by the audit and ignored here). A question of a run is flagged when its
document's ``uid`` is the ``uid`` of a flagged entry, or, for a question or an entry without one,
when task and ``id`` are those of an entry. Tasks are compared without their decoding suffix
(``_gen``, ``_greedy``): ``medinj_mcqu_all`` and ``medinj_mcqu_all_gen`` hold the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lm_eval_medinj.errors import InputError
from lm_eval_medinj.files import read_json
from lm_eval_medinj.study.runs import Item, StudyError

_MODE_SUFFIXES = ("_gen", "_greedy")


class _Match(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | int
    kind: Literal["exact", "ngram", "near"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    task: str = Field(min_length=1)
    id: str | int
    uid: str | None = None
    matches: list[_Match] = Field(min_length=1)


class _OverlapFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    settings: dict[str, Any] = Field(default_factory=dict)
    flagged: list[_Entry]


def data_task(task: str) -> str:
    """The task name without its decoding suffix: the name of the questions it holds."""
    for suffix in _MODE_SUFFIXES:
        if task.endswith(suffix):
            return task.removesuffix(suffix)
    return task


@dataclass(frozen=True)
class Flagged:
    """The flagged test questions of one overlap file."""

    path: Path
    uids: frozenset[str]
    task_ids: frozenset[tuple[str, str]]  # entries without uid: (data task, id)
    all_task_ids: frozenset[tuple[str, str]]  # every entry's (data task, id)
    entries: int

    def __contains__(self, item: Item) -> bool:
        task_id = (data_task(item.task), item.id)
        if item.uid:
            return item.uid in self.uids or task_id in self.task_ids
        return task_id in self.all_task_ids


def _where(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def read_flagged(path: Path) -> Flagged:
    """The flagged questions of ``path``; a file that is not an overlap file is one error line."""
    try:
        data = read_json(path)
    except OSError as error:
        raise StudyError(f"--exclude {path}: cannot be read ({error.strerror or error})") from None
    except InputError as error:
        raise StudyError(f"--exclude {error}") from None
    try:
        overlap = _OverlapFile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise StudyError(
            f"--exclude {path}: {_where(first['loc'])}: {first['msg']} (not a medinj overlap file)"
        ) from None
    entries = overlap.flagged
    if not entries:
        raise StudyError(f"--exclude {path}: flagged is empty: it excludes no question")
    return Flagged(
        path=path,
        uids=frozenset(entry.uid for entry in entries if entry.uid),
        task_ids=frozenset((data_task(entry.task), str(entry.id)) for entry in entries if not entry.uid),
        all_task_ids=frozenset((data_task(entry.task), str(entry.id)) for entry in entries),
        entries=len(entries),
    )
