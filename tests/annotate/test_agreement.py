"""Agreement figures against independent computations: sklearn, Cohen's and Krippendorff's definitions by hand."""

from __future__ import annotations

from fractions import Fraction
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from lm_eval_medinj.annotate.agreement import (
    agreement_report,
    disagreements,
    krippendorff_alpha,
    model_means,
    pairwise_kappa,
    rater_counts,
)
from lm_eval_medinj.annotate.folder import read_folder
from tests.annotate.helpers import make_folder, write_ratings


def _folder(tmp_path: Path, scale: str, ratings: dict[str, list[int | None]], models=("A", "B")):
    n = len(next(iter(ratings.values())))
    path = make_folder(tmp_path / "ann", n=n, scale=scale, models=models)
    for rater, values in ratings.items():
        write_ratings(path, rater, {f"it-{i + 1:04d}": v for i, v in enumerate(values) if v is not None})
    return read_folder(path)


def _alpha_by_definition(units: list[list[int]], values: list[int], level: str) -> Fraction:
    """Krippendorff's alpha from its definition (coincidence matrix), in exact fractions.

    o_ck = sum over units of (pairs of values c, k from different raters) / (m_u - 1);
    alpha = 1 - (n - 1) * sum o_ck d_ck / sum n_c n_k d_ck, with d the squared metric difference:
    nominal: 1 if c != k; ordinal: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2."""
    o = {(c, k): Fraction(0) for c in values for k in values}
    for unit in units:
        if len(unit) < 2:
            continue
        for i, j in permutations(range(len(unit)), 2):
            o[(unit[i], unit[j])] += Fraction(1, len(unit) - 1)
    n_c = {c: sum(o[(c, k)] for k in values) for c in values}
    n = sum(n_c.values())

    def delta(c: int, k: int) -> Fraction:
        if level == "nominal":
            return Fraction(int(c != k))
        low, high = sorted((values.index(c), values.index(k)))
        between = sum(n_c[values[g]] for g in range(low, high + 1))
        return (between - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(o[(c, k)] * delta(c, k) for c in values for k in values)
    expected = sum(n_c[c] * n_c[k] * delta(c, k) for c in values for k in values)
    return 1 - (n - 1) * observed / expected


def test_two_raters_binary_kappa_and_alpha_match_the_hand_worked_example(tmp_path: Path) -> None:
    # A: 1 1 0 0, B: 1 0 0 0. Cohen: p_o = 3/4, p_e = 1/2*1/4 + 1/2*3/4 = 1/2, kappa = (3/4 - 1/2)/(1/2) = 1/2.
    # Krippendorff (nominal): o_00 = 4, o_01 = o_10 = 1, o_11 = 2; n_0 = 5, n_1 = 3, n = 8;
    # alpha = 1 - (n - 1)(o_01 + o_10) / (2 n_0 n_1) = 1 - 7 * 2 / 30 = 8/15.
    folder = _folder(tmp_path, "binary", {"alice": [1, 1, 0, 0], "bob": [1, 0, 0, 0]})
    (pair,) = pairwise_kappa(folder, n_boot=200)
    assert pair["raters"] == ["alice", "bob"] and pair["n"] == 4 and pair["weights"] is None
    assert pair["kappa"]["value"] == pytest.approx(0.5)
    alpha = krippendorff_alpha(folder, n_boot=200)
    assert alpha is not None and alpha["level"] == "nominal" and alpha["n"] == 4
    assert alpha["value"] == pytest.approx(8 / 15)
    assert _alpha_by_definition([[1, 1], [1, 0], [0, 0], [0, 0]], [0, 1], "nominal") == Fraction(8, 15)


def test_krippendorffs_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, missing values;
    # nominal alpha = 0.743, ordinal 0.815. The from-definition helper gives the same.
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    assert float(_alpha_by_definition(units, [1, 2, 3, 4, 5], "nominal")) == pytest.approx(0.743, abs=5e-4)
    assert float(_alpha_by_definition(units, [1, 2, 3, 4, 5], "ordinal")) == pytest.approx(0.815, abs=5e-4)


@pytest.mark.parametrize("scale", ["binary", "likert5"])
def test_kappa_and_alpha_on_random_ratings_match_sklearn_and_the_definition(tmp_path: Path, scale: str) -> None:
    rng = np.random.default_rng(7)
    values = [0, 1] if scale == "binary" else [1, 2, 3, 4, 5]
    n = 40
    truth = rng.choice(values, size=n)
    ratings: dict[str, list[int | None]] = {}
    for rater in ("alice", "bob", "carol"):
        noisy = np.where(rng.random(n) < 0.3, rng.choice(values, size=n), truth)
        ratings[rater] = [int(v) if rng.random() > 0.15 else None for v in noisy]  # some items unrated
    folder = _folder(tmp_path, scale, ratings)
    pairs = pairwise_kappa(folder, n_boot=50)
    weights = None if scale == "binary" else "quadratic"
    for pair in pairs:
        a, b = (ratings[r] for r in pair["raters"])
        both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        x, y = zip(*both, strict=True)
        assert pair["n"] == len(both) and pair["weights"] == weights
        assert pair["kappa"]["value"] == pytest.approx(cohen_kappa_score(x, y, labels=values, weights=weights))
        assert pair["kappa"]["value"] == pytest.approx(_kappa_by_definition(x, y, values, weights))
    units = [[r[u] for r in ratings.values() if r[u] is not None] for u in range(n)]
    level = "nominal" if scale == "binary" else "ordinal"
    alpha = krippendorff_alpha(folder, n_boot=50)
    assert alpha is not None and alpha["level"] == level
    assert alpha["n"] == sum(len(unit) >= 2 for unit in units)
    assert alpha["value"] == pytest.approx(float(_alpha_by_definition(units, values, level)))
    assert alpha["low"] <= alpha["value"] <= alpha["high"]


def _kappa_by_definition(x, y, values, weights) -> float:
    """Cohen's kappa, 1 - sum w O / sum w E, with w = 0/1 (unweighted) or (i - j)^2 (quadratic)."""
    k = len(values)
    observed = np.zeros((k, k))
    for a, b in zip(x, y, strict=True):
        observed[values.index(a), values.index(b)] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((k, k))
    w = (i != j).astype(float) if weights is None else (i - j) ** 2.0
    return 1 - (w * observed).sum() / (w * expected).sum()


def test_bootstrap_intervals_are_the_item_resamples_of_the_documented_draws(tmp_path: Path) -> None:
    a, b = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1], [1, 0, 0, 0, 1, 0, 1, 1, 1, 1]
    folder = _folder(tmp_path, "binary", {"alice": a, "bob": b})
    (pair,) = pairwise_kappa(folder, n_boot=300, seed=5)
    x, y = np.array(a), np.array(b)
    rng = np.random.default_rng(5)
    draws = []
    for idx in rng.integers(0, 10, size=(300, 10)):
        with np.errstate(all="ignore"):
            draws.append(cohen_kappa_score(x[idx], y[idx]))
    draws = np.array(draws)
    low, high = np.percentile(draws[~np.isnan(draws)], [2.5, 97.5])
    assert (pair["kappa"]["low"], pair["kappa"]["high"]) == pytest.approx((low, high))


def test_model_means_are_the_mean_over_items_of_the_mean_over_raters(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "likert5", {"alice": [5, 2, 4, None, 3, 1], "bob": [4, None, 4, 1, None, 2]})
    means = model_means(folder, n_boot=500, seed=1)
    # items 1, 3, 5 are A's; 2, 4, 6 are B's (make_folder); per item, the mean over who rated it
    a, b = np.array([4.5, 4.0, 3.0]), np.array([2.0, 1.0, 1.5])
    assert means["A"]["n"] == 3 and means["A"]["mean"] == pytest.approx(a.mean())
    assert means["B"]["n"] == 3 and means["B"]["mean"] == pytest.approx(b.mean())
    rng = np.random.default_rng(1)  # the item bootstrap of study.stats.mean_interval
    draws = np.array([a[rng.integers(0, 3, size=3)].mean() for _ in range(500)])
    assert (means["A"]["low"], means["A"]["high"]) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])))
    assert model_means(folder, "bob", n_boot=10)["B"]["mean"] == pytest.approx(1.5)


def test_counts_disagreements_and_a_single_rater(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "likert5", {"alice": [5, 2, 4, None], "bob": [1, 3, 4, 2]})
    counts = rater_counts(folder)
    assert counts["alice"]["rated"] == 3 and counts["alice"]["counts"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert [(row["item"], row["spread"]) for row in disagreements(folder)] == [("it-0001", 4), ("it-0002", 1)]
    assert [row["item"] for row in disagreements(folder, min_spread=2)] == ["it-0001"]
    report = agreement_report(folder, n_boot=20)
    assert report["disagreements"][0]["ratings"] == {"alice": 5, "bob": 1}
    assert "model" not in report["disagreements"][0]  # still blinded
    lone = _folder(tmp_path / "lone", "binary", {"alice": [1, 0]})
    assert pairwise_kappa(lone) == [] and krippendorff_alpha(lone) is None
