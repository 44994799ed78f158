"""One model's evaluation as the study report reads it: lm-eval results, logged samples, judge rows.

A run folder is an lm-eval ``--output_path`` (run with ``--log_samples``), possibly holding
``judge/score.py`` outputs beside the samples. Multiple-choice leaf tasks are grouped into
*suites* as lm-eval groups them (``group_subtasks``): ``medinj_mcq_gen`` holds the MCQU and
MCQ leaves whose unweighted mean is Table 1's EM. A leaf outside any group is its own suite.

Samples are read one line at a time, and of each line only the document and the metric values
(``study/samples.py``): a run of 60,000 MCQ questions is 0.9 GB of samples, mostly prompts.
A question is keyed by its document's ``uid`` (``<benchmark>/<configuration>/<id>``) when it has
one, else by its task and ``id``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.lm_eval_outputs import newest_by_name, newest_samples, read_json, read_jsonl
from lm_eval_medinj.study.samples import SampleReader

MCQ_FORMATS = ("mcqu", "mcq")
MODES = ("gen", "choice", "greedy")


class StudyError(ValueError):
    """Runs that cannot be read, or compared, as asked."""


@dataclass(frozen=True, slots=True)
class Item:
    """One scored multiple-choice question of one run.

    ``data_revision`` is the dataset revision the document was read from ("" when the run does not
    say: unknown, comparable only with unknown).
    """

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
    uid: str = ""
    data_revision: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """``(uid,)`` when the document has one, else ``(task, id)``: what joins a question across runs."""
        return (self.uid,) if self.uid else (self.task, self.id)


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


def _text(value: Any) -> str:
    """A document field as text, one shared copy per distinct value."""
    return sys.intern(value if isinstance(value, str) else str(value))


def _number(values: Mapping[str, Any], name: str, where: str) -> float:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StudyError(f"{where}: {name} is {value!r}, not a number")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Doc:
    """The fields of a question's document that the report reads."""

    id: str
    format: str
    cluster: str
    provenance: str
    origin: str
    protocol: str
    prompt_source: str
    uid: str
    data_revision: str


def _doc(doc: Mapping[str, Any], where: str) -> _Doc:
    missing = [f"doc.{name}" for name in ("id", "task") if name not in doc]
    if missing:
        raise StudyError(f"{where}: sample {doc.get('id')!r} lacks {', '.join(missing)} (not a medinj MCQ task)")
    return _Doc(
        id=_text(doc["id"]),
        format=_text(doc["task"]),
        cluster=_text(doc.get("cluster") or doc["id"]),
        provenance=_text(doc.get("provenance", "")),
        origin=_text(doc.get("origin", "")),
        protocol=_text(doc.get("protocol", "")),
        prompt_source=_text(doc.get("prompt_source", "")),
        uid=_text(doc.get("uid") or ""),
        data_revision=_text(doc.get("data_revision") or ""),
    )


def sample_reader() -> SampleReader[_Doc]:
    """A reader of samples files that shares each distinct document between the runs it reads."""
    return SampleReader(_doc)


def _item(task: str, doc: _Doc, values: Mapping[str, Any], where: str) -> Item:
    if "em" not in values:
        raise StudyError(f"{where}: sample {doc.id!r} lacks em (not a medinj MCQ task)")
    if doc.format not in MCQ_FORMATS:
        raise StudyError(f"{where}: sample {doc.id!r}, field 'doc.task': {doc.format!r} is not one of {MCQ_FORMATS}")
    return Item(
        task=task,
        id=doc.id,
        format=doc.format,
        cluster=doc.cluster,
        provenance=doc.provenance,
        origin=doc.origin,
        em=_number(values, "em", where),
        hamming=_number(values, "hamming", where) if values.get("hamming") is not None else None,
        protocol=doc.protocol,
        prompt_source=doc.prompt_source,
        uid=doc.uid,
        data_revision=doc.data_revision,
    )


def _leaf(task: str, path: Path, reader: SampleReader[_Doc]) -> list[Item] | None:
    """The items of one samples file, streamed; None when it is not an MCQ leaf (no ``em`` on its first line)."""
    items: list[Item] = []
    seen: dict[tuple[str, ...], str] = {}
    lines = 0
    for where, doc, values in reader.read(path):
        lines += 1
        if not items and "em" not in values:
            return None
        item = _item(task, doc, values, where)
        if item.key in seen:
            raise StudyError(f"{where}: question {'/'.join(item.key)} already at {seen[item.key]}")
        seen[item.key] = where
        items.append(item)
    if not lines:
        raise StudyError(f"{path}: empty samples file (an interrupted lm-eval run? run it again)")
    return items


def _mapping(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    """An object field of a results file (absent or null: empty); anything else is an error naming it."""
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise StudyError(f"{path}: field {key!r} is {type(value).__name__}, not an object (an lm-eval results file?)")
    return value


def _suites(leaves: Mapping[str, list[Item]], groups: Mapping[str, list[str]]) -> dict[str, list[Item]]:
    """Groups whose subtasks are all MCQ leaves with samples; the other leaves on their own."""
    suites: dict[str, list[Item]] = {}
    grouped: set[str] = set()
    for group, subtasks in groups.items():
        if subtasks and all(task in leaves for task in subtasks):
            suites[group] = [item for task in subtasks for item in leaves[task]]
            grouped.update(subtasks)
            keys = {item.key for item in suites[group]}
            if len(keys) != len(suites[group]):
                raise StudyError(f"{group}: its subtasks {', '.join(subtasks)} share questions (same uid)")
    for task, items in leaves.items():
        if task not in grouped:
            suites[task] = items
    return suites


def _judged(path: Path) -> tuple[list[JudgedItem], dict[str, Any]]:
    """The rows of one ``judge_*.jsonl`` and its ``judge_results_*.json`` summary."""
    summary_path = path.with_name(path.name.replace("judge_", "judge_results_", 1)).with_suffix(".json")
    if not summary_path.is_file():
        raise StudyError(f"{path}: its summary {summary_path.name} (written by judge/score.py) is missing")
    summary = read_json(summary_path)
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


def load_run(label: str, folder: Path, reader: SampleReader[_Doc] | None = None) -> Run:
    """Read one lm-eval output folder (results, samples, judge outputs).

    Pass the same ``reader`` (:func:`sample_reader`) for every run of a report: each question's
    document is then parsed once, not once per run."""
    reader = reader or sample_reader()
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
        groups.update(_mapping(data, "group_subtasks", path))
        n_shot.update(_mapping(data, "n-shot", path))
        for key in ("chat_template_sha", "system_instruction_sha", "fewshot_as_multiturn"):
            settings.setdefault(key, data.get(key))
        # lm-eval logs the template's text and hash only when it applied one (--apply_chat_template)
        settings.setdefault("chat_template_applied", bool(data.get("chat_template") or data.get("chat_template_sha")))
        config = _mapping(data, "config", path)
        settings.setdefault("model", config.get("model_args"))
        for key in ("model_revision", "model_sha"):
            settings.setdefault(key, config.get(key) or None)
    leaves: dict[str, list[Item]] = {}
    for task, path in newest_samples(folder).items():
        items = _leaf(task, path, reader)
        if items is not None:
            leaves[task] = items
    run = Run(label, folder, _suites(leaves, groups), settings=settings)
    run.settings["n_shot"] = {task: n_shot.get(task) for task in leaves}
    revisions = {item.data_revision for items in leaves.values() for item in items}
    run.settings["data_revisions"] = sorted(revision or "unknown" for revision in revisions)
    for path in sorted(folder.rglob("judge_*.jsonl")):
        rows, summary = _judged(path)
        run.judged += rows
        run.judge_summaries.append(summary)
    if not run.suites and not run.judged:
        raise StudyError(
            f"model {label}: no logged MCQ samples or judge outputs below {folder}; run lm_eval with --log_samples"
        )
    return run
