"""Drawing rating items from evaluated runs: blinded, stratified by model (and by the judge's verdict).

The pool is every logged OEQ answer (``samples_*oeq*.jsonl``, the newest per task) below each run
folder, read as the judge reads it (:func:`~lm_eval_medinj.judge.items.item_from_row`: the record's
first user turn, its reference, the model's answer), with the clinical context of the document
(``doc["context"]``) where it has one that the question does not already hold. The judge's verdict
comes from the ``judge/score.py`` rows written beside the samples file (``judge_<judge>_<task>_<date>.jsonl``).

The draw: ``n`` split as evenly as possible over the models, then each model's share over its
two verdicts (:func:`allocate`; a stratum smaller than its even share gives all it has and the rest
is shared by the others), a seeded sample without replacement in each stratum, then one shuffle of
all items, so that an item's position says nothing about its model. Items are numbered ``it-0001``...
in the shuffled order.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from pydantic import ValidationError

from lm_eval_medinj.annotate.folder import write_folder
from lm_eval_medinj.annotate.records import (
    FORMAT,
    BlindItem,
    JudgeVerdict,
    KeyEntry,
    Scale,
    Study,
    validation_message,
)
from lm_eval_medinj.errors import InputError, UsageError
from lm_eval_medinj.judge.items import item_from_row
from lm_eval_medinj.judge.scoring import slug
from lm_eval_medinj.lm_eval_outputs import newest_samples, read_jsonl

OEQ_SAMPLES = "samples_*oeq*.jsonl"


@dataclass(frozen=True)
class Answer:
    """One model's answer to one OEQ document: a candidate rating item."""

    model: str
    run: str
    task: str
    doc_id: int
    id: str
    uid: str
    question: str
    context: str | None
    reference: str
    answer: str
    judge: JudgeVerdict | None

    @property
    def stratum(self) -> tuple[str, int | None]:
        return self.model, self.judge.verdict if self.judge else None


def _judge_rows(samples: Path, judge: str | None) -> tuple[Path | None, list[dict]]:
    """The judge/score.py rows for this samples file (``judge``: the judge spec, when several judged it)."""
    stem = samples.stem.removeprefix("samples_")
    found = {
        path.name.removeprefix("judge_").removesuffix(f"_{stem}.jsonl"): path
        for path in samples.parent.glob(f"judge_*_{stem}.jsonl")
    }
    if judge is not None:
        if slug(judge) not in found:
            judged = ", ".join(sorted(found)) or "no judge"
            raise UsageError(f"--judge {judge}: no judge_{slug(judge)}_{stem}.jsonl beside {samples} ({judged} found)")
        return found[slug(judge)], read_jsonl(found[slug(judge)])
    if len(found) > 1:
        raise UsageError(f"{samples}: judged by several judges ({', '.join(sorted(found))}); choose one with --judge")
    path = next(iter(found.values()), None)
    return (path, read_jsonl(path)) if path else (None, [])


def _verdict(row: dict, where: str) -> JudgeVerdict:
    try:
        return JudgeVerdict.model_validate({field: row.get(field) for field in JudgeVerdict.model_fields})
    except ValidationError as error:
        raise InputError(f"{where}: {validation_message(error)} (not a judge/score.py row)") from None


def _context(doc: Mapping, question: str) -> str | None:
    context = doc.get("context")
    if not isinstance(context, str) or not context.strip() or context.strip() in question:
        return None  # none, or already in the user turn (the ALL parquet puts it there)
    return context


def read_answers(label: str, run: Path, judge: str | None = None) -> list[Answer]:
    """Every logged OEQ answer below one lm-eval output folder, with the judge's verdict where found."""
    if not run.is_dir():
        raise InputError(f"model {label}: {run} is not a folder (an lm-eval --output_path)")
    files = {task: path for task, path in newest_samples(run).items() if fnmatch(path.name, OEQ_SAMPLES)}
    if not files:
        raise InputError(
            f"model {label}: no OEQ samples ({OEQ_SAMPLES}) below {run}; run lm_eval on an OEQ task with --log_samples"
        )
    answers = []
    for task, path in sorted(files.items()):
        judged_path, judged = _judge_rows(path, judge)
        samples = read_jsonl(path)
        if judged_path is not None and len(judged) != len(samples):
            raise InputError(f"{judged_path}: {len(judged)} judge rows for {len(samples)} samples in {path.name}")
        for index, sample in enumerate(samples):
            where = f"{path}:{index + 1}"
            doc_id = sample.get("doc_id")
            if not isinstance(sample.get("doc"), dict) or not isinstance(doc_id, int) or isinstance(doc_id, bool):
                raise InputError(f"{where}: not an lm-eval sample (fields 'doc' and 'doc_id')")
            doc = sample["doc"]
            item = item_from_row(sample, where)
            verdict = None
            if judged_path is not None:
                row, row_where = judged[index], f"{judged_path}:{index + 1}"
                if str(row.get("id")) != item.id or row.get("candidate") != item.candidate:
                    raise InputError(f"{row_where}: does not match {where} (judged another samples file?)")
                verdict = _verdict(row, row_where)
            answers.append(
                Answer(
                    model=label,
                    run=str(run.resolve()),
                    task=task,
                    doc_id=sample["doc_id"],
                    id=item.id,
                    uid=str(doc.get("uid") or f"{task}/{item.id}"),
                    question=item.question,
                    context=_context(doc, item.question),
                    reference=item.reference,
                    answer=item.candidate,
                    judge=verdict,
                )
            )
    return answers


def allocate(sizes: Mapping[Hashable, int], n: int) -> dict[Hashable, int]:
    """``n`` split over strata as evenly as their sizes allow (max-min fair), extra units to the first strata.

    A stratum smaller than its even share gives all its items and the rest is shared again among
    the others; the remainder of an uneven split goes one each to the first open strata, in order."""
    if n > sum(sizes.values()):
        raise ValueError(f"cannot draw {n} from {sum(sizes.values())}")
    shares = dict.fromkeys(sizes, 0)
    open_strata = [s for s in sizes if sizes[s] > 0]
    left = n
    while left and open_strata:
        even = left // len(open_strata)
        small = [s for s in open_strata if sizes[s] - shares[s] <= even]
        if small:  # exhausted at the even share: take all of it and share the rest again
            for s in small:
                left -= sizes[s] - shares[s]
                shares[s] = sizes[s]
            open_strata = [s for s in open_strata if s not in small]
            continue
        for i, s in enumerate(open_strata):
            shares[s] += even + (i < left % len(open_strata))
        left = 0
    return shares


def draw(pool: Sequence[Answer], n: int, seed: int, models: Sequence[str], by_verdict: bool) -> list[Answer]:
    """``n`` answers, stratified by model (and verdict), in a seeded shuffled order."""
    strata: dict[tuple[str, int | None], list[Answer]] = {}
    verdicts = (1, 0) if by_verdict else (None,)
    for model in models:
        for verdict in verdicts:
            strata[(model, verdict)] = []
    for answer in sorted(pool, key=lambda a: (models.index(a.model), a.task, a.doc_id)):
        strata[(answer.model, answer.stratum[1] if by_verdict else None)].append(answer)
    sizes = {stratum: len(answers) for stratum, answers in strata.items()}
    if n > len(pool):
        counts = ", ".join(f"{m} {sum(a.model == m for a in pool)}" for m in models)
        raise UsageError(f"--n {n} is larger than the pool: {len(pool)} answers ({counts})")
    non_empty = sum(size > 0 for size in sizes.values())
    if n < non_empty:
        raise UsageError(f"--n {n} is smaller than the number of strata ({non_empty}); each must get an item")
    per_model = allocate({m: sum(sizes[(m, v)] for v in verdicts) for m in models}, n)
    shares = {}
    for model in models:  # models first, then the verdicts within each model
        shares |= allocate({(model, v): sizes[(model, v)] for v in verdicts}, per_model[model])
    rng = random.Random(seed)
    drawn = [a for stratum, k in shares.items() for a in rng.sample(strata[stratum], k)]
    rng.shuffle(drawn)
    return drawn


def build_study(
    runs: Sequence[tuple[str, Path]],
    n: int,
    seed: int,
    scale: str,
    by_verdict: bool,
    judge: str | None = None,
) -> tuple[Study, list[BlindItem], list[KeyEntry]]:
    """The study, its blinded items and its key, drawn from the runs (label, folder)."""
    labels = [label for label, _ in runs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"model labels repeat: {', '.join(labels)}")
    pool = [answer for label, run in runs for answer in read_answers(label, run, judge)]
    if by_verdict:
        unjudged = sorted({f"{a.model} ({a.task})" for a in pool if a.judge is None})
        if unjudged:
            raise UsageError(
                f"--by-verdict needs judge/score.py rows beside every OEQ samples file; none for {', '.join(unjudged)}"
            )
    chosen = draw(pool, n, seed, labels, by_verdict)
    study = Study(
        format=FORMAT,
        scale=Scale.of(scale),
        seed=seed,
        n=n,
        stratify=("model", "judge_verdict") if by_verdict else ("model",),
        models=tuple(labels),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    items, key = [], []
    for number, answer in enumerate(chosen, start=1):
        name = f"it-{number:04d}"
        items.append(
            BlindItem(
                item=name,
                question=answer.question,
                context=answer.context,
                reference=answer.reference,
                answer=answer.answer,
            )
        )
        key.append(
            KeyEntry(
                item=name,
                model=answer.model,
                run=answer.run,
                task=answer.task,
                doc_id=answer.doc_id,
                id=answer.id,
                uid=answer.uid,
                judge=answer.judge,
            )
        )
    return study, items, key


def sample_folder(
    out: Path,
    runs: Sequence[tuple[str, Path]],
    n: int,
    seed: int = 0,
    scale: str = "binary",
    by_verdict: bool = False,
    judge: str | None = None,
) -> Study:
    """Draw the items and write the annotation folder ``out`` (which must be new or empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not empty; give a new folder (ratings are never overwritten)")
    study, items, key = build_study(runs, n, seed, scale, by_verdict, judge)
    write_folder(out, study, items, key)
    return study
