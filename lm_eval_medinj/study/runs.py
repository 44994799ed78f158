"""One model's evaluation as the study report reads it: lm-eval results, logged samples, judge rows.

A run folder is an lm-eval ``--output_path`` (run with ``--log_samples``), possibly holding
``judge/score.py`` outputs beside the samples. Multiple-choice leaf tasks are grouped into
*suites* as lm-eval groups them (``group_subtasks``): ``medinj_mcq_gen`` holds the MCQU and
MCQ leaves whose unweighted mean is Table 1's EM. A leaf outside any group is its own suite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.lm_eval_outputs import newest_by_name, newest_samples, read_json, read_jsonl

MCQ_FORMATS = ("mcqu", "mcq")
MODES = ("gen", "choice", "greedy")


class StudyError(ValueError):
    """Runs that cannot be read, or compared, as asked."""


@dataclass(frozen=True)
class Item:
    """One scored multiple-choice question of one run."""

    task: str
    id: str
    format: str
    cluster: str
    provenance: str
    origin: str
    em: float
    hamming: float | None
    protocol: str
    prompt_source: str

    @property
    def key(self) -> tuple[str, str]:
        return self.task, self.id


@dataclass(frozen=True)
class JudgedItem:
    """One judged open answer (a row of a ``judge_*.jsonl`` file)."""

    source: str
    id: str
    verdict: float
    p_equivalent: float
    p_calibrated: float | None
    words: float
    cluster: str

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.id


@dataclass
class Run:
    """A labelled model run: its suites of MCQ items, its judged answers and its settings."""

    label: str
    folder: Path
    suites: dict[str, list[Item]] = field(default_factory=dict)
    judged: list[JudgedItem] = field(default_factory=list)
    judge_summaries: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def mode_of(task: str) -> str:
    """The decoding family of a task or group name: ``gen``, ``greedy`` or ``choice``."""
    for mode in ("gen", "greedy"):
        if task.endswith(f"_{mode}"):
            return mode
    return "choice"


def _item(task: str, sample: Mapping[str, Any], where: str) -> Item:
    doc = sample.get("doc") or {}
    missing = [f"doc.{name}" for name in ("id", "task") if name not in doc] + (["em"] if "em" not in sample else [])
    if missing:
        raise StudyError(f"{where}: sample {sample.get('doc_id')!r} lacks {', '.join(missing)} (not a medinj MCQ task)")
    return Item(
        task=task,
        id=str(doc["id"]),
        format=str(doc["task"]),
        cluster=str(doc.get("cluster") or doc["id"]),
        provenance=str(doc.get("provenance", "")),
        origin=str(doc.get("origin", "")),
        em=float(sample["em"]),
        hamming=float(sample["hamming"]) if sample.get("hamming") is not None else None,
        protocol=str(doc.get("protocol", "")),
        prompt_source=str(doc.get("prompt_source", "")),
    )


def _suites(leaves: Mapping[str, list[Item]], groups: Mapping[str, list[str]]) -> dict[str, list[Item]]:
    """Groups whose subtasks are all MCQ leaves with samples; the other leaves on their own."""
    suites: dict[str, list[Item]] = {}
    grouped: set[str] = set()
    for group, subtasks in groups.items():
        if subtasks and all(task in leaves for task in subtasks):
            suites[group] = [item for task in subtasks for item in leaves[task]]
            grouped.update(subtasks)
    for task, items in leaves.items():
        if task not in grouped:
            suites[task] = items
    return suites


def _judged(path: Path) -> tuple[list[JudgedItem], dict[str, Any]]:
    """The rows of one ``judge_*.jsonl`` and its ``judge_results_*.json`` summary."""
    summary_path = path.with_name(path.name.replace("judge_", "judge_results_", 1)).with_suffix(".json")
    if not summary_path.is_file():
        raise StudyError(f"{path}: its summary {summary_path.name} (written by judge/score.py) is missing")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    task = Path(str(summary.get("samples", ""))).stem.removeprefix("samples_").rsplit("_", 1)[0]
    source = f"{summary.get('judge')} on {task}"
    rows = []
    for index, row in enumerate(read_jsonl(path)):
        try:
            rows.append(
                JudgedItem(
                    source=source,
                    id=str(row["id"]),
                    verdict=float(row["verdict"]),
                    p_equivalent=float(row["p_equivalent"]),
                    p_calibrated=float(row["p_calibrated"]) if row.get("p_calibrated") is not None else None,
                    words=float(row["candidate_words"]),
                    cluster=str(row.get("cluster") or row["id"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StudyError(f"{path}#{index}: not a judge/score.py row ({error})") from None
    return rows, summary


def load_run(label: str, folder: Path) -> Run:
    """Read one lm-eval output folder (results, samples, judge outputs)."""
    if not folder.is_dir():
        raise StudyError(f"model {label}: {folder} is not a folder")
    results = newest_by_name(folder.rglob("results_*.json"), "results_")
    if not results:
        raise StudyError(f"model {label}: no results_*.json below {folder} (an lm-eval --output_path)")
    settings: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    n_shot: dict[str, Any] = {}
    for path in results.values():
        data = read_json(path)
        groups.update(data.get("group_subtasks") or {})
        n_shot.update(data.get("n-shot") or {})
        for key in ("chat_template_sha", "system_instruction_sha", "fewshot_as_multiturn"):
            settings.setdefault(key, data.get(key))
        settings.setdefault("model", (data.get("config") or {}).get("model_args"))
    leaves: dict[str, list[Item]] = {}
    for task, path in newest_samples(folder).items():
        samples = read_jsonl(path)
        if samples and "em" in samples[0]:
            leaves[task] = [_item(task, sample, str(path)) for sample in samples]
    run = Run(label, folder, _suites(leaves, groups), settings=settings)
    run.settings["n_shot"] = {task: n_shot.get(task) for task in leaves}
    for path in sorted(folder.rglob("judge_*.jsonl")):
        rows, summary = _judged(path)
        run.judged += rows
        run.judge_summaries.append(summary)
    if not run.suites and not run.judged:
        raise StudyError(
            f"model {label}: no logged MCQ samples or judge outputs below {folder}; run lm_eval with --log_samples"
        )
    return run
