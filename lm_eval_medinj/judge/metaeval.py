"""Meta-evaluation: agreement of each judge with human ratings, paired comparison, calibration,
verbosity and slot-swap tests; results as one JSON-ready dict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_medinj.errors import InputError
from lm_eval_medinj.judge.backends import JudgeBackend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration, fit_calibration
from lm_eval_medinj.judge.items import JudgeItem, LabelledItem
from lm_eval_medinj.judge.prompt import JudgePrompt
from lm_eval_medinj.judge.scoring import score_items, slug
from lm_eval_medinj.judge.stats import binarise, compare_judges, judge_agreement, partial_correlation
from lm_eval_medinj.judge.verbosity import (
    compare_perturbed,
    length_coefficient,
    length_controlled,
    padded,
    relative_length,
    swapped,
    words,
)


@dataclass
class JudgeReport:
    """Everything measured for one judge (arrays kept for the plots)."""

    judge: str
    p: np.ndarray
    p_calibrated: np.ndarray
    agreement: dict[str, Any]
    calibration: Calibration
    calibration_path: Path
    verbosity: dict[str, Any]
    padding: dict[str, Any]
    swap: dict[str, Any]


@dataclass(frozen=True)
class MetaEvalSettings:
    threshold: float | None = None
    n_boot: int = 2000
    seed: int = 0
    calibration_method: str = "platt"
    batch_size: int = 8
    progress: bool = True


def evaluate_judge(
    labelled: Sequence[LabelledItem],
    backend: JudgeBackend,
    prompt: JudgePrompt,
    cache: JudgementCache,
    out_dir: Path,
    settings: MetaEvalSettings,
) -> JudgeReport:
    """Score the items (plain, padded, swapped) with one judge and measure it against the humans."""
    items = [x.item for x in labelled]
    ratings = np.array([x.rating for x in labelled], dtype=float)
    labels = binarise(ratings, settings.threshold)

    def run(batch: Sequence[JudgeItem]) -> np.ndarray:
        return score_items(batch, backend, prompt, cache, settings.batch_size, settings.progress).complete_p()

    p, p_pad, p_swap = run(items), run(padded(items)), run(swapped(items))
    agreement = judge_agreement(ratings, labels, p, settings.n_boot, settings.seed)
    length = relative_length(items)
    coef = length_coefficient(p, length, labels)
    partial_r, partial_p = partial_correlation(p, np.array([words(i.candidate) for i in items], float), ratings)
    controlled = length_controlled(p, length, coef)
    calibration = fit_calibration(
        backend.judge_id, prompt.prompt_id, p, labels, settings.calibration_method, coef, seed=settings.seed
    )
    calibration_path = out_dir / f"calibration_{slug(backend.judge_id)}.json"
    calibration.save(calibration_path)
    pad = compare_perturbed(p, p_pad)
    swap = compare_perturbed(p, p_swap)
    return JudgeReport(
        judge=backend.judge_id,
        p=p,
        p_calibrated=calibration.apply(p),
        agreement={name: est.as_dict() for name, est in agreement.items()},
        calibration=calibration,
        calibration_path=calibration_path,
        verbosity={
            "partial_r_length_given_rating": partial_r,
            "partial_p": partial_p,
            "length_coef_given_label": coef,
            "raw_mean_p": float(p.mean()),
            "raw_mean_verdict": float((p >= 0.5).mean()),
            "length_controlled": asdict(controlled),
        },
        padding={**asdict(pad), "flip_rate": pad.flip_rate},
        swap={
            **asdict(swap),
            "flip_rate": swap.flip_rate,
            "r_original_swapped": float(np.corrcoef(p, p_swap)[0, 1]) if p.std() and p_swap.std() else None,
        },
    )


def null_for_undefined(value: Any) -> Any:
    """``value`` with every float that is not finite (an undefined statistic) replaced by ``None``,
    so that it is written as JSON ``null``, never as the non-standard ``NaN``."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: null_for_undefined(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [null_for_undefined(item) for item in value]
    return value


def meta_evaluate(
    labelled: Sequence[LabelledItem],
    backends: Sequence[JudgeBackend],
    prompt: JudgePrompt,
    cache: JudgementCache,
    out_dir: Path,
    settings: MetaEvalSettings = MetaEvalSettings(),
) -> tuple[list[JudgeReport], dict[str, Any]]:
    """Reports per judge and the JSON summary: agreement, pairwise tests and the chosen judge."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ratings = np.array([x.rating for x in labelled], dtype=float)
    labels = binarise(ratings, settings.threshold)
    if len(set(labels.tolist())) < 2:
        raise InputError("the binarised human ratings are all the same; set --threshold")
    reports = [evaluate_judge(labelled, b, prompt, cache, out_dir, settings) for b in backends]
    pairs = [
        compare_judges(a.judge, b.judge, ratings, a.p, b.p, settings.n_boot, settings.seed)
        for a, b in combinations(reports, 2)
    ]
    best = max(reports, key=lambda r: r.agreement["pearson"]["value"])
    evidence = [pair for pair in pairs if best.judge in (pair.judge_a, pair.judge_b)]
    summary = {
        "n_items": len(labelled),
        "prompt": prompt.prompt_id,
        "positive_rate": float(labels.mean()),
        "rating_values": sorted(set(ratings.tolist())),
        "judges": {
            r.judge: {
                "agreement": r.agreement,
                "calibration": asdict(r.calibration),
                "calibration_path": str(r.calibration_path),
                "verbosity": r.verbosity,
                "padding": r.padding,
                "swap": r.swap,
            }
            for r in reports
        },
        "pairs": [asdict(pair) for pair in pairs],
        "best": {
            "judge": best.judge,
            "criterion": "highest Pearson r with the human rating",
            "pearson": best.agreement["pearson"],
            "significant_vs": [
                pair.judge_b if pair.judge_a == best.judge else pair.judge_a
                for pair in evidence
                if pair.diff.low > 0 or pair.diff.high < 0
            ],
        },
    }
    return reports, summary
