"""Scores split by a document field, from lm-eval's logged samples (``--log_samples``).

MediQAl is read by question type (Understanding / Reasoning) and medical subject; any
document field works (``question_type``, ``specialty``, ``provenance``, ``origin``). The
values are the means of the per-sample metrics lm-eval logged, so each group's mean is
what lm-eval would report for a task holding only that group's questions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medinj.lm_eval_outputs import newest_samples, read_jsonl

# MediQAl's field names, mapped to the document fields that hold them.
FIELD_ALIASES = {"medical_subject": "specialty"}


class BreakdownError(ValueError):
    """Samples that cannot be split as asked."""


@dataclass(frozen=True)
class GroupScores:
    """The mean of each per-sample metric over the questions whose field has one value."""

    value: str
    questions: int
    clusters: int
    means: dict[str, float]


def latest_samples(folder: Path) -> dict[str, Path]:
    """Task name -> its newest samples file below ``folder`` (lm-eval writes one per task and run)."""
    found = newest_samples(folder)
    if not found:
        raise BreakdownError(f"no samples_*.jsonl below {folder}: run lm_eval with --log_samples")
    return found


def _numeric_metrics(sample: Mapping[str, Any]) -> dict[str, float]:
    values = {name: sample.get(name) for name in sample.get("metrics", [])}
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def breakdown(samples: Sequence[Mapping[str, Any]], field: str, where: str = "samples") -> list[GroupScores]:
    """One :class:`GroupScores` per value of the document field ``field``, sorted by value."""
    key = FIELD_ALIASES.get(field, field)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for sample in samples:
        doc = sample["doc"]
        if key not in doc:
            known = ", ".join(sorted(k for k, v in doc.items() if isinstance(v, str)))
            raise BreakdownError(f"{where}: record {doc.get('id')!r} has no field {key!r} (text fields: {known})")
        groups.setdefault(str(doc[key]) or "(none)", []).append(sample)
    result = []
    for value, members in sorted(groups.items()):
        per_metric: dict[str, list[float]] = {}
        for sample in members:
            for name, score in _numeric_metrics(sample).items():
                per_metric.setdefault(name, []).append(score)
        clusters = {sample["doc"].get("cluster") or sample["doc"]["id"] for sample in members}
        means = {name: math.fsum(scores) / len(scores) for name, scores in sorted(per_metric.items())}
        result.append(GroupScores(value, len(members), len(clusters), means))
    return result


def breakdown_folder(folder: Path, fields: Sequence[str]) -> dict[str, dict[str, list[GroupScores]]]:
    """Task -> field -> groups, for every task with logged samples below ``folder``."""
    return {
        task: {field: breakdown(samples, field, str(path)) for field in fields}
        for task, path in latest_samples(folder).items()
        for samples in [read_jsonl(path)]
    }


def to_markdown(tables: Mapping[str, Mapping[str, list[GroupScores]]]) -> str:
    """One Markdown table per task and field: value, questions, clusters, then each metric."""
    lines: list[str] = []
    for task, by_field in tables.items():
        for field, groups in by_field.items():
            metrics = sorted({name for group in groups for name in group.means})
            lines += [f"### {task} by {field}", ""]
            lines.append("| " + " | ".join([field, "questions", "clusters", *metrics]) + " |")
            lines.append("|" + "---|" * (3 + len(metrics)))
            for group in groups:
                cells = [f"{group.means[m]:.4f}" if m in group.means else "" for m in metrics]
                lines.append("| " + " | ".join([group.value, str(group.questions), str(group.clusters), *cells]) + " |")
            lines.append("")
    return "\n".join(lines)


def to_json(tables: Mapping[str, Mapping[str, list[GroupScores]]]) -> dict[str, Any]:
    """The tables as plain JSON (task -> field -> list of groups)."""
    return {
        task: {field: [group.__dict__ for group in groups] for field, groups in by_field.items()}
        for task, by_field in tables.items()
    }
