"""The report's human column: each model's mean expert rating on its rated answers, and the judge against it.

Read from a ``medinj annotate`` folder (docs/HUMAN.md): an item's rating is the mean over its
raters; a model's figure is the mean over its rated items, with a percentile bootstrap interval
over those items (the items differ between models, so the intervals are not paired). The judge's
P(equivalent) of each rated answer comes from the report's own runs (the ``medinj judge`` rows of
the run the answer was drawn from), else from the folder's key; Pearson's r and Spearman's rho
between it and the human rating, over every rated answer that has one, with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lm_eval_medinj.study.runs import Run, StudyError

if TYPE_CHECKING:
    from lm_eval_medinj.annotate.folder import AnnotationFolder

# Fewer pairs than this: no correlation is reported.
MIN_PAIRS = 3


def _judge_p(runs: Sequence[Run]) -> dict[tuple[str, Path, str, str], float]:
    """(label, run folder, task, record id) -> P(equivalent) of the runs' judge rows."""
    found: dict[tuple[str, Path, str, str], float] = {}
    for run in runs:
        for judged in run.judged:
            task = judged.source.rsplit(" on ", 1)[-1]
            found[(run.label, run.folder.resolve(), task, judged.id)] = judged.p_equivalent
    return found


def read_annotations(folder: Path) -> AnnotationFolder:
    """The ``medinj annotate`` folder of ``--human``, validated (one line for a malformed one)."""
    try:
        from lm_eval_medinj.annotate.folder import read_folder
    except ImportError as missing:
        raise StudyError(
            f"--human needs the annotate extra ({missing}): pip install 'lm-eval-medinj[annotate]'"
        ) from None
    return read_folder(folder)


def human_section(annotations: AnnotationFolder, runs: Sequence[Run], labels: Sequence[str], n_resamples: int,
                  seed: int, confidence: float) -> dict[str, Any]:  # fmt: skip
    """The human table (label -> interval or ``None``: not rated) and the judge-human correlation."""
    from lm_eval_medinj.annotate.agreement import finite_estimate, model_means
    from lm_eval_medinj.annotate.folder import model_ratings
    from lm_eval_medinj.judge.stats import bootstrap, pearson, spearman

    folder = annotations.path
    rated = model_ratings(annotations)
    unknown = sorted(model for model, items in rated.items() if items and model not in labels)
    if unknown:
        raise StudyError(
            f"--human {folder}: rates models {', '.join(unknown)}, which are not among this report's "
            f"({', '.join(labels)}); label the runs as they were labelled for `medinj annotate sample`"
        )
    if not any(rated.values()):
        raise StudyError(f"--human {folder}: no item is rated yet")
    means = model_means(annotations, n_boot=n_resamples, seed=seed, confidence=confidence)
    table: dict[str, Any] = {
        label: {"estimate": cell["mean"], **{k: cell[k] for k in ("low", "high", "n", "raters_per_item")}}
        if (cell := means.get(label)) and cell["n"]
        else None
        for label in labels
    }
    judge_p = _judge_p(runs)
    humans, judges = [], []
    for label, items in rated.items():
        for item in items:
            p = judge_p.get((label, Path(item.run).resolve(), item.task, item.id))
            if p is None and item.judge is not None:
                p = item.judge.p_equivalent
            if p is not None:
                humans.append(item.rating)
                judges.append(p)
    correlation = None
    if len(humans) >= MIN_PAIRS:
        x, y = np.array(judges, dtype=float), np.array(humans, dtype=float)
        correlation = {
            "n": len(humans),
            **{name: finite_estimate(bootstrap(metric, x, y, n_boot=min(n_resamples, 2000), seed=seed))
               for name, metric in (("pearson", pearson), ("spearman", spearman))},
        }  # fmt: skip
    return {
        "folder": str(folder),
        "scale": annotations.study.scale.kind,
        "table": table,
        "judge_correlation": correlation,
    }
