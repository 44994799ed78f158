"""Statistics against values computed by hand or by an independent formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lm_eval_medinj.judge.stats import (
    binarise,
    bootstrap,
    compare_judges,
    judge_agreement,
    kendall_tau_b,
    paired_bootstrap_diff,
    partial_correlation,
    pearson,
    williams_t,
)


def test_correlations_match_hand_computation() -> None:
    x = np.array([1, 2, 3, 4, 5], float)
    y = np.array([2, 1, 4, 3, 5], float)
    # deviations (-2,-1,0,1,2) and (-1,-2,1,0,2): sum of products 8, sums of squares 10 and 10.
    agreement = judge_agreement(x, (x > 3).astype(int), y / 10, n_boot=200)
    assert agreement["pearson"].value == pytest.approx(0.8)
    assert agreement["spearman"].value == pytest.approx(0.8)  # ranks equal the values
    # 10 pairs: (1,2) and (3,4) discordant, 8 concordant.
    assert agreement["kendall_tau_b"].value == pytest.approx((8 - 2) / 10)


def test_kendall_tau_b_with_ties() -> None:
    # Pairs: 4 concordant, 0 discordant, 1 tied in x only, 1 tied in y only, 6 in all.
    x, y = np.array([1, 1, 2, 3], float), np.array([1, 2, 2, 3], float)
    assert kendall_tau_b(x, y) == pytest.approx(4 / math.sqrt((6 - 1) * (6 - 1)))


def test_accuracy_and_kappa_match_hand_computation() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.2, 0.1, 0.3, 0.7, 0.6, 0.4])  # verdicts 1 1 0 0 0 1 1 0
    agreement = judge_agreement(labels.astype(float), labels, p, n_boot=200)
    observed, chance = 6 / 8, 0.5 * 0.5 + 0.5 * 0.5
    assert agreement["accuracy"].value == pytest.approx(observed)
    assert agreement["cohen_kappa"].value == pytest.approx((observed - chance) / (1 - chance))


def test_williams_t_worked_example() -> None:
    # n = 100, r(human, A) = .6, r(human, B) = .4, r(A, B) = .5, by hand:
    # |R| = 1 - .36 - .16 - .25 + 2(.6)(.4)(.5) = .47; mean r = .5; (1 - .5)^3 = .125
    # t = .2 * sqrt(99 * 1.5) / sqrt(2 * (99 / 97) * .47 + .25 * .125)
    #   = .2 * 12.186058 / sqrt(.959381 + .03125) = 2.437212 / .995304 = 2.448711
    t, df, p = williams_t(0.6, 0.4, 0.5, 100)
    assert t == pytest.approx(2.448711, abs=1e-5)
    assert df == 97
    assert p == pytest.approx(2 * sps.t.sf(2.448711, 97), rel=1e-4)
    assert williams_t(0.4, 0.6, 0.5, 100)[0] == pytest.approx(-t)


def test_compare_judges_uses_observed_correlations() -> None:
    rng = np.random.default_rng(1)
    ratings = rng.normal(size=200)
    good = ratings + rng.normal(scale=0.5, size=200)
    poor = ratings + rng.normal(scale=2.0, size=200)
    pair = compare_judges("good", "poor", ratings, good, poor, n_boot=500)
    assert pair.r_a == pytest.approx(np.corrcoef(ratings, good)[0, 1])
    assert pair.r_ab == pytest.approx(np.corrcoef(good, poor)[0, 1])
    assert pair.williams_t == pytest.approx(williams_t(pair.r_a, pair.r_b, pair.r_ab, 200)[0])
    assert pair.diff.low > 0 and pair.bootstrap_p < 0.05 and pair.williams_p < 0.05


def test_paired_bootstrap_of_identical_judges_is_null() -> None:
    rng = np.random.default_rng(2)
    ratings, p = rng.normal(size=50), rng.uniform(size=50)
    diff, p_value = paired_bootstrap_diff(ratings, p, p, n_boot=300)
    assert (diff.value, diff.low, diff.high, p_value) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_ci_brackets_estimate_and_narrows_with_n() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for n in (40, 400):
        x = rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n)
        estimate = bootstrap(pearson, x, y, n_boot=500)
        assert estimate.low <= estimate.value <= estimate.high
        widths.append(estimate.high - estimate.low)
    assert widths[1] < widths[0] / 2
    perfect = bootstrap(pearson, np.arange(10.0), np.arange(10.0), n_boot=100)
    assert (perfect.low, perfect.high) == pytest.approx((1.0, 1.0))


def test_partial_correlation_matches_closed_form() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=300)
    x = z + rng.normal(size=300)
    y = 0.7 * z + 0.3 * x + rng.normal(size=300)
    rxy, rxz, ryz = np.corrcoef(x, y)[0, 1], np.corrcoef(x, z)[0, 1], np.corrcoef(y, z)[0, 1]
    expected = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
    r, p = partial_correlation(x, y, z)
    assert r == pytest.approx(expected)
    assert p == pytest.approx(2 * sps.t.sf(abs(expected) * math.sqrt(297 / (1 - expected**2)), 297))


def test_binarise_defaults_to_scale_midpoint() -> None:
    assert binarise(np.array([1, 2, 3, 4, 5.0])).tolist() == [0, 0, 0, 1, 1]
    assert binarise(np.array([0, 1, 1, 0.0])).tolist() == [0, 1, 1, 0]
    assert binarise(np.array([1, 2, 3, 4, 5.0]), threshold=2).tolist() == [0, 0, 1, 1, 1]
