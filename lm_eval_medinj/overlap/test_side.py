"""The test side of the audit: the test documents of lm-eval tasks, resolved as ``lm_eval`` resolves them.

``TaskManager(include_path=<this package's tasks>, metadata=<--metadata>)`` loads the named
tasks and groups; every leaf task's ``test_docs()`` is read. A document gives its ``id``, its
``uid`` when it has one, and its text: ``context`` (a clinical case), ``question`` and
``option_texts``.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import InputError, UsageError, data_errors
from lm_eval_medinj.overlap.text import QuestionText, packed_lines
from lm_eval_medinj.paths import tasks_path

TEXT_FIELDS = ("id", "question", "option_texts")


@dataclass(frozen=True)
class TestDoc:
    """One test document: its task, ids and packed normalised text."""

    task: str
    id: str
    uid: str | None
    text: str


@dataclass
class TestSets:
    """The test documents of every leaf task, in task order."""

    tasks: dict[str, int] = field(default_factory=dict)  # leaf task -> number of questions
    docs: list[TestDoc] = field(default_factory=list)

    def line_counts(self) -> Counter[str]:
        """How many distinct test texts hold each line."""
        counts: Counter[str] = Counter()
        for text in {doc.text for doc in self.docs}:
            counts.update(packed_lines(text))
        return counts


def _doc(task: str, doc: dict[str, Any]) -> TestDoc:
    missing = [name for name in TEXT_FIELDS if name not in doc]
    if missing:
        raise InputError(
            f"task {task}: its documents have no {', '.join(repr(m) for m in missing)} field; only "
            "MedInjection-FR, FrenchMedMCQA and MediQAl tasks of this package can be audited"
        )
    text = QuestionText.of(doc["question"] or "", doc.get("context") or "", doc["option_texts"] or ()).pack()
    return TestDoc(task, str(doc["id"]), str(doc["uid"]) if doc.get("uid") else None, text)


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
    except (KeyError, ValueError) as error:  # lm-eval's own refusals (a duplicate task, a bad spec)
        if isinstance(error, data_errors()):
            raise
        raise UsageError(f"--tests: {error}") from error
    tests = TestSets()
    for name, task in loaded["tasks"].items():
        if not task.has_test_docs():
            raise InputError(f"task {name}: it has no test split")
        docs = [_doc(name, doc) for doc in task.test_docs()]
        if not docs:
            raise InputError(f"task {name}: its test set has no questions")
        tests.tasks[name] = len(docs)
        tests.docs.extend(docs)
    return tests
