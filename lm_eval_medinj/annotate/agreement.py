"""Agreement between raters, and the human rating of each model, from an annotation folder.

- per rater: items rated, items commented, the count of each value, the mean;
- every pair of raters, on the items both rated: Cohen's kappa (``sklearn.metrics.cohen_kappa_score``),
  unweighted on the binary scale, **quadratic**-weighted on the 1-5 scale;
- all raters: Krippendorff's alpha (the ``krippendorff`` package), nominal on the binary scale,
  ordinal on the 1-5 scale, over the items at least two raters rated;
- 95% percentile bootstrap intervals over items (``n_boot`` resamples, one seed; resamples where a
  statistic is undefined, e.g. a single value, are dropped, as in judge/meta_eval.py);
- the items the raters disagree on (ratings spread by at least ``min_spread``), still blinded;
- per model (un-blinded through key.jsonl): the mean over its rated items of the per-item mean over
  raters, with the item bootstrap of :func:`lm_eval_medinj.study.stats.mean_interval`.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from lm_eval_medinj.annotate.folder import AnnotationFolder, model_ratings
from lm_eval_medinj.judge.stats import Estimate, bootstrap
from lm_eval_medinj.study.stats import Stratum, mean_interval


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def finite_estimate(estimate: Estimate) -> dict[str, float | None]:
    """An estimate for JSON: an undefined value or bound (NaN: e.g. every rating equal) is ``None``."""
    return {"value": _finite(estimate.value), "low": _finite(estimate.low), "high": _finite(estimate.high)}


def rater_counts(folder: AnnotationFolder) -> dict[str, dict[str, Any]]:
    """Per rater: items rated, items with a comment, count of each scale value, mean rating."""
    counts = {}
    for rater in folder.raters:
        given = folder.ratings[rater].values()
        values = [r.rating for r in given]
        counts[rater] = {
            "rated": len(values),
            "commented": sum(bool(r.comment.strip()) for r in given),
            "counts": {str(v): values.count(v) for v in folder.scale.values},
            "mean": float(np.mean(values)) if values else None,
        }
    return counts


def rating_matrix(folder: AnnotationFolder) -> tuple[list[str], list[str], np.ndarray]:
    """Raters x items (``items.jsonl`` order) of ratings, NaN where a rater has not rated the item."""
    raters, items = folder.raters, list(folder.items)
    matrix = np.full((len(raters), len(items)), np.nan)
    for r, rater in enumerate(raters):
        for i, item in enumerate(items):
            if item in folder.ratings[rater]:
                matrix[r, i] = folder.ratings[rater][item].rating
    return raters, items, matrix


def kappa_weights(folder: AnnotationFolder) -> str | None:
    """Cohen's kappa weights: none on the binary scale, quadratic on the ordinal 1-5 scale."""
    return "quadratic" if folder.scale.ordinal else None


def pairwise_kappa(folder: AnnotationFolder, n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Cohen's kappa of every pair of raters on the items both rated, with its bootstrap interval."""
    raters, _, matrix = rating_matrix(folder)
    weights = kappa_weights(folder)
    metric = partial(cohen_kappa_score, labels=list(folder.scale.values), weights=weights)
    pairs = []
    for a, b in combinations(range(len(raters)), 2):
        both = ~np.isnan(matrix[a]) & ~np.isnan(matrix[b])
        x, y = matrix[a, both].astype(int), matrix[b, both].astype(int)
        row: dict[str, Any] = {"raters": [raters[a], raters[b]], "n": int(both.sum()), "weights": weights}
        row["kappa"] = finite_estimate(bootstrap(metric, x, y, n_boot, seed)) if len(x) else None
        pairs.append(row)
    return pairs


def _alpha(data: np.ndarray, level: str, domain: list[int]) -> float:
    """Krippendorff's alpha, NaN (not a warning) where undefined (a single value observed)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(krippendorff.alpha(data, level_of_measurement=level, value_domain=domain))


def krippendorff_alpha(folder: AnnotationFolder, n_boot: int = 2000, seed: int = 0) -> dict[str, Any] | None:
    """Alpha over all raters (nominal / ordinal), with a bootstrap over the items two or more raters rated."""
    raters, _, matrix = rating_matrix(folder)
    pairable = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
    if len(raters) < 2 or not pairable.shape[1]:
        return None
    level = "ordinal" if folder.scale.ordinal else "nominal"
    domain = list(folder.scale.values)
    value = _alpha(pairable, level, domain)
    rng = np.random.default_rng(seed)
    n = pairable.shape[1]
    draws = np.array([_alpha(pairable[:, idx], level, domain) for idx in rng.integers(0, n, size=(n_boot, n))])
    draws = draws[~np.isnan(draws)]
    low, high = np.percentile(draws, [2.5, 97.5]) if len(draws) else (math.nan, math.nan)
    return {"level": level, "n": n, **finite_estimate(Estimate(value, float(low), float(high)))}


def disagreements(folder: AnnotationFolder, min_spread: int = 1) -> list[dict[str, Any]]:
    """Items rated by two or more raters whose ratings differ by ``min_spread`` or more, widest first."""
    rows = []
    for item in folder.items:
        given = {rater: journal[item] for rater, journal in sorted(folder.ratings.items()) if item in journal}
        values = [r.rating for r in given.values()]
        if len(values) >= 2 and max(values) - min(values) >= min_spread:
            rows.append(
                {
                    "item": item,
                    "spread": max(values) - min(values),
                    "ratings": {rater: r.rating for rater, r in given.items()},
                    "comments": {rater: r.comment for rater, r in given.items() if r.comment.strip()},
                }
            )
    return sorted(rows, key=lambda row: -row["spread"])


def model_means(
    folder: AnnotationFolder, rater: str | None = None, n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict[str, dict[str, Any]]:
    """Per model: rated items, raters per item, and the mean human rating (mean over raters per item) with
    its bootstrap interval."""
    means: dict[str, dict[str, Any]] = {}
    for model, rated in model_ratings(folder, rater).items():
        if not rated:
            means[model] = {"n": 0, "mean": None, "low": None, "high": None, "raters_per_item": None}
            continue
        values = np.array([r.rating for r in rated], dtype=float)
        (interval,) = mean_interval([Stratum.unclustered(values)], n_boot, seed, confidence)
        means[model] = {
            "n": len(rated),
            "mean": interval.estimate,
            "low": interval.low,
            "high": interval.high,
            "raters_per_item": float(np.mean([r.n_raters for r in rated])),
        }
    return means


def agreement_report(
    folder: AnnotationFolder, n_boot: int = 2000, seed: int = 0, min_spread: int = 1
) -> dict[str, Any]:
    """Everything ``medinj annotate agreement`` prints, as one JSON-ready dict."""
    return {
        "folder": str(folder.path),
        "scale": folder.scale.model_dump(mode="json"),
        "n_items": len(folder.items),
        "n_boot": n_boot,
        "seed": seed,
        "raters": rater_counts(folder),
        "kappa": pairwise_kappa(folder, n_boot, seed),
        "alpha": krippendorff_alpha(folder, n_boot, seed),
        "disagreements": disagreements(folder, min_spread),
        "min_spread": min_spread,
        "models": model_means(folder, None, n_boot, seed),
    }


def _ci(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("value", cell.get("mean")) is None:
        return "undefined"
    value = cell.get("value", cell.get("mean"))
    low, high = cell["low"], cell["high"]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None else f"{value:.3f} [undefined]"


def to_text(report: dict[str, Any]) -> str:
    """The report as plain text for the terminal."""
    scale = report["scale"]
    lines = [f"{report['folder']}: {report['n_items']} items, {scale['kind']} scale {scale['values']}", "", "Raters:"]
    for rater, counts in report["raters"].items():
        spread = ", ".join(f"{v}: {c}" for v, c in counts["counts"].items())
        lines.append(f"  {rater}: {counts['rated']} rated ({spread}), {counts['commented']} commented")
    if not report["raters"]:
        lines.append("  none yet")
    lines += ["", f"Agreement (95% bootstrap CI, {report['n_boot']} resamples over items):"]
    for pair in report["kappa"]:
        name = "Cohen's kappa" + (f" ({pair['weights']} weights)" if pair["weights"] else "")
        lines.append(f"  {' / '.join(pair['raters'])}: {name} {_ci(pair['kappa'])} on {pair['n']} items")
    alpha = report["alpha"]
    if alpha:
        lines.append(f"  all raters: Krippendorff's alpha ({alpha['level']}) {_ci(alpha)} on {alpha['n']} items")
    if not report["kappa"]:
        lines.append("  needs two raters")
    disagreed = report["disagreements"]
    lines += ["", f"Disagreements (spread >= {report['min_spread']}): {len(disagreed)}"]
    for row in disagreed:
        ratings = ", ".join(f"{r} {v}" for r, v in row["ratings"].items())
        lines.append(f"  {row['item']}: {ratings}")
    lines += ["", "Mean human rating per model (mean over raters per item; 95% bootstrap CI over items):"]
    for model, cell in report["models"].items():
        lines.append(f"  {model}: {_ci(cell)} on {cell['n']} items")
    return "\n".join(lines)
