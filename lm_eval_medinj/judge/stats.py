"""Agreement statistics with bootstrap CIs, paired comparison of judges and Williams' t."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap 95% CI."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _quiet(metric: Metric, x: np.ndarray, y: np.ndarray) -> float:
    """A metric that is NaN (not a warning) on constant resamples."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return float(metric(x, y))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return stats.pearsonr(x, y).statistic


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return stats.spearmanr(x, y).statistic


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    return stats.kendalltau(x, y, variant="b").statistic


def accuracy(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(x == y))


def cohen_kappa(x: np.ndarray, y: np.ndarray) -> float:
    return cohen_kappa_score(x, y)


def bootstrap(metric: Metric, x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """The metric on all items and a percentile 95% CI over item resamples (NaN resamples dropped)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    draws = np.array([_quiet(metric, x[idx], y[idx]) for idx in rng.integers(0, n, size=(n_boot, n))])
    draws = draws[~np.isnan(draws)]
    value = _quiet(metric, x, y)
    if not len(draws):
        return Estimate(value, math.nan, math.nan)
    low, high = np.percentile(draws, [2.5, 97.5])
    return Estimate(value, float(low), float(high))


def binarise(ratings: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """1 where the rating is above ``threshold`` (default: the midpoint of the observed scale)."""
    if threshold is None:
        threshold = (ratings.min() + ratings.max()) / 2
    return (ratings > threshold).astype(int)


def judge_agreement(
    ratings: np.ndarray, labels: np.ndarray, p: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, Estimate]:
    """Correlations of P(equivalent) with the rating; accuracy and kappa of the verdict vs the label."""
    verdicts = (p >= 0.5).astype(int)
    return {
        "pearson": bootstrap(pearson, ratings, p, n_boot, seed),
        "spearman": bootstrap(spearman, ratings, p, n_boot, seed),
        "kendall_tau_b": bootstrap(kendall_tau_b, ratings, p, n_boot, seed),
        "accuracy": bootstrap(accuracy, labels, verdicts, n_boot, seed),
        "cohen_kappa": bootstrap(cohen_kappa, labels, verdicts, n_boot, seed),
    }


@dataclass(frozen=True)
class PairedComparison:
    """Judge A vs judge B on the same items: r(A) - r(B) with a paired bootstrap, and Williams' t."""

    judge_a: str
    judge_b: str
    r_a: float
    r_b: float
    r_ab: float
    diff: Estimate
    bootstrap_p: float
    williams_t: float
    williams_df: int
    williams_p: float


def paired_bootstrap_diff(
    ratings: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[Estimate, float]:
    """r(rating, A) - r(rating, B) over the same item resamples; two-sided bootstrap p-value."""
    rng = np.random.default_rng(seed)
    n = len(ratings)
    diffs = []
    for idx in rng.integers(0, n, size=(n_boot, n)):
        diffs.append(_quiet(pearson, ratings[idx], p_a[idx]) - _quiet(pearson, ratings[idx], p_b[idx]))
    draws = np.array(diffs)
    draws = draws[~np.isnan(draws)]
    value = _quiet(pearson, ratings, p_a) - _quiet(pearson, ratings, p_b)
    low, high = np.percentile(draws, [2.5, 97.5])
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return Estimate(float(value), float(low), float(high)), float(p_value)


def williams_t(r12: float, r13: float, r23: float, n: int) -> tuple[float, int, float]:
    """Williams' t for r12 vs r13 sharing variable 1 (Steiger 1980, eq. 7); df = n - 3.

    Here 1 is the human rating, 2 and 3 the two judges, r23 their correlation.
    """
    det = 1 - r12**2 - r13**2 - r23**2 + 2 * r12 * r13 * r23
    mean_r = (r12 + r13) / 2
    t = (
        (r12 - r13)
        * math.sqrt((n - 1) * (1 + r23))
        / math.sqrt(2 * (n - 1) / (n - 3) * det + mean_r**2 * (1 - r23) ** 3)
    )
    df = n - 3
    return t, df, float(2 * stats.t.sf(abs(t), df))


def compare_judges(
    name_a: str,
    name_b: str,
    ratings: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Both paired tests of the difference in Pearson r between two judges."""
    r_a, r_b, r_ab = pearson(ratings, p_a), pearson(ratings, p_b), pearson(p_a, p_b)
    diff, boot_p = paired_bootstrap_diff(ratings, p_a, p_b, n_boot, seed)
    t, df, t_p = williams_t(r_a, r_b, r_ab, len(ratings))
    return PairedComparison(name_a, name_b, float(r_a), float(r_b), float(r_ab), diff, boot_p, t, df, t_p)


def partial_correlation(x: np.ndarray, y: np.ndarray, control: np.ndarray) -> tuple[float, float]:
    """Pearson r of x and y after regressing both on ``control`` (with intercept); p with df n-3."""
    design = np.column_stack([np.ones_like(control, dtype=float), control])
    resid_x = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    resid_y = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    r = float(_quiet(pearson, resid_x, resid_y))
    df = len(x) - 3
    t = r * math.sqrt(df / max(1e-12, 1 - r**2))
    return r, float(2 * stats.t.sf(abs(t), df))
