"""The test side of the audit: the test documents of lm-eval tasks, resolved as ``lm_eval`` resolves them.

``TaskManager(include_path=<this package's tasks>, metadata=<--metadata>)`` loads the named
tasks and groups; every leaf task's ``test_docs()`` is read. A document gives its ``id``, its
``uid`` when it has one, and its text: ``context`` (a clinical case), ``question`` and
``option_texts``.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError, UsageError, data_errors
from lm_eval_medinj.overlap.text import line_keys, pack_questions
from lm_eval_medinj.paths import tasks_path

TEXT_FIELDS = ("id", "question", "option_texts")


@dataclass(frozen=True)
class TestDoc:
    """One test document: its task, ids and packed normalised text."""

    __test__ = False  # not a pytest test class

    task: str
    id: str
    uid: str | None
    text: str


@dataclass
class TestSets:
    """The test documents of every leaf task, in task order."""

    __test__ = False  # not a pytest test class

    tasks: dict[str, int] = field(default_factory=dict)  # leaf task -> number of questions
    docs: list[TestDoc] = field(default_factory=list)

    def add(self, docs: list[TestDoc]) -> None:
        """One task's documents."""
        self.tasks[docs[0].task] = len(docs)
        self.docs.extend(docs)

    def line_counts(self) -> Counter[int]:
        """How many distinct test texts hold each line (by hash)."""
        counts: Counter[int] = Counter()
        for text in {doc.text for doc in self.docs}:
            counts.update(line_keys(text))
        return counts


def task_docs(task: str, docs: Iterable[dict[str, Any]]) -> list[TestDoc]:
    """A task's documents (lm-eval's, or ``MedRecord.to_doc()``'s) as test docs; refuses an empty test set
    and documents without a question."""
    docs = list(docs)
    if not docs:
        raise InputError(f"task {task}: its test set has no questions")
    missing = [name for name in TEXT_FIELDS if name not in docs[0]]
    if missing:
        raise InputError(
            f"task {task}: its documents have no {', '.join(repr(m) for m in missing)} field; only "
            "MedInjection-FR, FrenchMedMCQA and MediQAl tasks of this package can be audited"
        )
    texts = pack_questions((d["question"] or "", d.get("context") or "", d["option_texts"] or ()) for d in docs)
    return [
        TestDoc(task, str(d["id"]), str(d["uid"]) if d.get("uid") else None, text)
        for d, text in zip(docs, texts, strict=True)
    ]


def _leaves(manager: Any, name: str) -> list[str]:
    """The leaf tasks under a name (itself when it is a task)."""
    entry = manager.task_index.get(name)
    members = entry.cfg.get("task") if entry is not None and entry.cfg and "group" in entry.cfg else None
    if not isinstance(members, list):
        return [name]
    return [leaf for member in members if isinstance(member, str) for leaf in _leaves(manager, member)]


def _empty_task(manager: Any, names: list[str]) -> str:
    """The first leaf task lm-eval cannot build for want of test documents."""
    for leaf in (leaf for name in names for leaf in _leaves(manager, name)):
        try:
            manager.load([leaf])
        except IndexError:
            return leaf
    return ", ".join(names)


def load_test_sets(names: list[str], metadata: dict[str, Any]) -> TestSets:
    """The test documents of the named tasks or groups; refuses an unknown name or an empty test set."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_path()), metadata=metadata)
    for name in names:
        if name not in manager.all_tasks and not Path(name).is_file():
            close = difflib.get_close_matches(name, [t for t in manager.all_tasks if t.startswith("medinj")], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UsageError(f"--tests: unknown task {name!r}{hint}; `lm_eval ls tasks` lists them")
    try:
        loaded = manager.load(names)
    except IndexError:  # lm-eval reads a task's first test document when it builds the task
        raise InputError(f"task {_empty_task(manager, names)}: its test set has no questions") from None
    except (KeyError, ValueError) as error:  # lm-eval's own refusals (a duplicate task, a bad spec)
        if isinstance(error, data_errors()):
            raise
        raise UsageError(f"--tests: {error}") from error
    tests = TestSets()
    for name, task in loaded["tasks"].items():
        if not task.has_test_docs():
            raise InputError(f"task {name}: it has no test split")
        tests.add(task_docs(name, task.test_docs()))
    return tests
