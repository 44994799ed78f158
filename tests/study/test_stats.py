"""The study statistics, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lm_eval_medinj.study import stats
from lm_eval_medinj.study.stats import (
    Difference,
    Stratum,
    bootstrap_draws,
    cluster_codes,
    difference_interval,
    holm,
    mcnemar_exact,
    mean_interval,
    minimum_detectable_difference,
    paired_difference,
    percentile_interval,
    point_estimate,
)

# --- McNemar's exact test ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 1, 1, 0, 0, 1, 0, 1], [0, 1, 0, 0, 1, 1, 0, 0]),
        ([1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1]),
        ([0, 0, 0, 1], [1, 1, 1, 1]),
        ([True] * 30 + [False] * 5, [False] * 3 + [True] * 32),
    ],
)
def test_mcnemar_is_the_binomial_test_on_discordant_pairs(a: list[int], b: list[int]) -> None:
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    result = mcnemar_exact(np.array(a), np.array(b))
    assert (result.only_a, result.only_b, result.n_items) == (only_a, only_b, len(a))
    assert result.p_value == pytest.approx(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue, rel=1e-12)
    assert result.discordant_rate == pytest.approx((only_a + only_b) / len(a))
    # Symmetric in a and b.
    swapped = mcnemar_exact(np.array(b), np.array(a))
    assert (swapped.only_a, swapped.only_b) == (only_b, only_a)
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)


def test_mcnemar_without_discordant_pairs_has_p_one() -> None:
    a = np.array([True, False, True, True])
    result = mcnemar_exact(a, a.copy())
    assert (result.only_a, result.only_b, result.p_value) == (0, 0, 1.0)


def test_mcnemar_worked_example() -> None:
    # 10 items only a got right, 2 only b: two-sided exact p = 2 * P(X <= 2), X ~ Bin(12, 1/2)
    # = 2 * (C(12,0) + C(12,1) + C(12,2)) / 2**12 = 2 * 79 / 4096 = 0.03857.
    a = np.array([True] * 10 + [False] * 2 + [True] * 5 + [False] * 7)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5 + [False] * 7)
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (10, 2)
    assert result.p_value == pytest.approx(2 * sum(math.comb(12, k) for k in range(3)) / 2**12, rel=1e-12)
    assert round(result.p_value, 4) == 0.0386


def test_mcnemar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="items"):
        mcnemar_exact(np.array([True, False]), np.array([True]))
    with pytest.raises(ValueError, match="boolean"):
        mcnemar_exact(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="1-D"):
        mcnemar_exact(np.ones((2, 2), dtype=bool), np.ones((2, 2), dtype=bool))


# --- the paired, stratified cluster bootstrap --------------------------------------------


def reference_draws(strata: list[tuple[list[list[float]], list[object]]], n_resamples: int, seed: int) -> np.ndarray:
    """The documented draw order, re-implemented as plain Python loops.

    Strata in order; in each, clusters numbered by first appearance (``None``: own cluster), then
    one ``rng.integers(0, k, size=k)`` per resample; a stratum mean is the drawn clusters' item
    sum over the number of items drawn; the statistic is the unweighted mean of the stratum means.
    """
    rng = np.random.default_rng(seed)
    n_columns = len(strata[0][0][0])
    totals = [[0.0] * n_columns for _ in range(n_resamples)]
    for rows, labels in strata:
        members: list[list[int]] = []
        index: dict[object, int] = {}
        for i, label in enumerate(labels):
            if label is None or label not in index:
                if label is not None:
                    index[label] = len(members)
                members.append([i])
            else:
                members[index[label]].append(i)
        k = len(members)
        for r in range(n_resamples):
            picks = rng.integers(0, k, size=k)
            items = [i for c in picks for i in members[int(c)]]
            for column in range(n_columns):
                totals[r][column] += sum(rows[i][column] for i in items) / len(items)
    return np.array(totals) / len(strata)


def random_strata(seed: int) -> list[tuple[list[list[float]], list[object]]]:
    rng = np.random.default_rng(seed)
    out = []
    for n_items, n_cases in ((37, 9), (23, 23)):
        correct = (rng.random((n_items, 3)) < [0.3, 0.5, 0.7]).astype(float).tolist()
        labels: list[object] = [f"case-{int(c)}" for c in rng.integers(0, n_cases, size=n_items)]
        labels[0] = None
        labels[5] = None
        out.append((correct, labels))
    return out


def as_strata(raw: list[tuple[list[list[float]], list[object]]]) -> list[Stratum]:
    return [Stratum(np.array(rows), np.array(labels, dtype=object)) for rows, labels in raw]


@pytest.mark.parametrize("block_elements", [1 << 20, 50, 1])
def test_bootstrap_matches_a_direct_computation(monkeypatch: pytest.MonkeyPatch, block_elements: int) -> None:
    # Small blocks draw the resamples in several (block, k) calls: the stream must not change.
    monkeypatch.setattr(stats, "_BLOCK_ELEMENTS", block_elements)
    raw = random_strata(3)
    expected = reference_draws(raw, n_resamples=300, seed=11)
    draws = bootstrap_draws(as_strata(raw), n_resamples=300, seed=11)
    np.testing.assert_allclose(draws, expected, rtol=1e-12, atol=0)
    low, high = percentile_interval(draws)
    np.testing.assert_allclose(low, np.quantile(expected, 0.025, axis=0), rtol=1e-12)
    np.testing.assert_allclose(high, np.quantile(expected, 0.975, axis=0), rtol=1e-12)


def test_paired_difference_matches_a_direct_computation() -> None:
    raw = random_strata(4)
    strata = as_strata(raw)
    expected = reference_draws(raw, n_resamples=400, seed=5)
    diff = paired_difference(strata, 2, 0, n_resamples=400, seed=5)
    means = [np.mean(np.array(rows), axis=0) for rows, _ in raw]
    point = (means[0][2] - means[0][0] + means[1][2] - means[1][0]) / 2
    assert diff.estimate == pytest.approx(point, rel=1e-12)
    assert diff.low == pytest.approx(np.quantile(expected[:, 2] - expected[:, 0], 0.025), rel=1e-12)
    assert diff.high == pytest.approx(np.quantile(expected[:, 2] - expected[:, 0], 0.975), rel=1e-12)
    assert diff.low <= diff.estimate <= diff.high
    # The same from precomputed draws (what a report comparing many pairs does).
    again = difference_interval(point_estimate(strata), bootstrap_draws(strata, 400, 5), 2, 0)
    assert again == diff


def test_paired_difference_of_identical_columns_is_exactly_zero() -> None:
    rng = np.random.default_rng(0)
    column = rng.random(200) < 0.6
    values = np.column_stack([column, rng.random(200) < 0.5, column]).astype(float)
    strata = [Stratum(values, np.arange(200) // 4), Stratum.unclustered(values[:50])]
    assert paired_difference(strata, 0, 2, n_resamples=500, seed=1) == Difference(0.0, 0.0, 0.0)


def test_mean_interval_contains_the_estimate() -> None:
    intervals = mean_interval(as_strata(random_strata(6)), n_resamples=500, seed=2)
    assert len(intervals) == 3
    for interval in intervals:
        assert interval.low <= interval.estimate <= interval.high
        assert interval.high - interval.low > 0


def test_clustering_widens_the_interval() -> None:
    # 50 clinical cases of 10 questions each; a case's questions are all right or all wrong.
    case_correct = np.arange(50) % 2 == 0
    values = np.repeat(case_correct, 10).astype(float)
    clustered = percentile_interval(bootstrap_draws([Stratum(values, np.repeat(np.arange(50), 10))], 4000, seed=0))
    by_item = percentile_interval(bootstrap_draws([Stratum.unclustered(values)], 4000, seed=0))
    clustered_width = float(clustered[1][0] - clustered[0][0])
    item_width = float(by_item[1][0] - by_item[0][0])
    # Expected widths: about 2 * 1.96 * sqrt(0.25 / 50) = 0.28 against 2 * 1.96 * sqrt(0.25 / 500) = 0.088.
    assert clustered_width > 2 * item_width
    assert clustered_width == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 50), rel=0.15)
    assert item_width == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 500), rel=0.15)


def test_singleton_clusters_are_the_item_bootstrap() -> None:
    rng = np.random.default_rng(8)
    values = (rng.random(40) < 0.4).astype(float)
    # Labels whose sorted order is not the item order: clusters are numbered by first appearance.
    labels = np.array([f"q{i}" for i in range(40)])
    draws = bootstrap_draws([Stratum(values, labels)], n_resamples=300, seed=4)[:, 0]
    item_rng = np.random.default_rng(4)
    direct = np.array([values[item_rng.integers(0, 40, size=40)].mean() for _ in range(300)])
    np.testing.assert_allclose(draws, direct, rtol=1e-12, atol=0)
    no_labels = Stratum(values, np.array([None] * 40, dtype=object))
    np.testing.assert_allclose(bootstrap_draws([no_labels], 300, 4)[:, 0], direct, rtol=1e-12, atol=0)


def test_stratified_estimate_is_the_unweighted_mean_of_stratum_means() -> None:
    a = np.array([1.0] * 20 + [0.0] * 80)  # 100 items, mean 0.2
    b = np.array([1.0] * 6 + [0.0] * 4)  # 10 items, mean 0.6
    strata = [Stratum.unclustered(a), Stratum.unclustered(b)]
    assert point_estimate(strata)[0] == pytest.approx(0.4)  # not the pooled 26 / 110 = 0.236
    draws = bootstrap_draws(strata, n_resamples=4000, seed=3)
    assert draws.mean() == pytest.approx(0.4, abs=0.01)
    # Each stratum is resampled on its own: the spread is that of (mean_a + mean_b) / 2.
    expected_sd = 0.5 * math.sqrt(0.2 * 0.8 / 100 + 0.6 * 0.4 / 10)
    assert draws.std() == pytest.approx(expected_sd, rel=0.1)


def test_cluster_codes_number_by_first_appearance() -> None:
    assert cluster_codes(["b", "a", "b", None, "c", None, "a"]).tolist() == [0, 1, 0, 2, 3, 4, 1]


# --- Holm --------------------------------------------------------------------------------


def test_holm_hand_worked_example() -> None:
    # m = 4, sorted: 0.005 * 4 = 0.02; 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> max(0.06, 0.04) = 0.06.
    # Back in input order [0.01, 0.04, 0.03, 0.005]: [0.03, 0.06, 0.06, 0.02].
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)


def test_holm_caps_at_one_and_handles_edges() -> None:
    # 0.3 * 3 = 0.9; 0.4 * 2 = 0.8 -> 0.9; 0.6 * 1 = 0.6 -> 0.9. And 0.5 * 3 = 1.5 -> 1.
    assert holm([0.4, 0.3, 0.6]) == pytest.approx([0.9, 0.9, 0.9])
    assert holm([0.5, 0.6, 0.7]) == [1.0, 1.0, 1.0]
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert holm([0.2]) == [0.2]
    assert holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([float("nan")])


# --- minimum detectable difference --------------------------------------------------------


def connor_by_iteration(n: int, psi: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Connor (1987): sqrt(n) * d = z(1 - alpha/2) * sqrt(psi) + z(power) * sqrt(psi - d^2), by fixed point."""
    z_alpha, z_power = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    d = 0.0
    for _ in range(200):
        d = (z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - d * d)) / math.sqrt(n)
    return float(d)


def test_mde_matches_a_hand_computation() -> None:
    mde = minimum_detectable_difference(500, 0.2)
    assert mde == pytest.approx(connor_by_iteration(500, 0.2), rel=1e-9)
    assert mde == pytest.approx(0.0558997, rel=1e-5)
    # Put back into Connor's sample-size formula, it gives n = 500.
    z_alpha, z_power = sps.norm.ppf(0.975), sps.norm.ppf(0.8)
    n = (z_alpha * math.sqrt(0.2) + z_power * math.sqrt(0.2 - mde**2)) ** 2 / mde**2
    assert n == pytest.approx(500, rel=1e-9)
    # Slightly under the conservative (z_alpha + z_power) * sqrt(psi / n).
    simple = (z_alpha + z_power) * math.sqrt(0.2 / 500)
    assert 0.98 * simple < mde < simple
    assert minimum_detectable_difference(800, 0.3, alpha=0.01, power=0.9) == pytest.approx(
        connor_by_iteration(800, 0.3, alpha=0.01, power=0.9), rel=1e-9
    )


def test_mde_scales_as_one_over_root_n_and_grows_with_discordance() -> None:
    assert minimum_detectable_difference(4000, 0.2) / minimum_detectable_difference(1000, 0.2) == pytest.approx(
        0.5, rel=0.01
    )
    by_rate = [minimum_detectable_difference(1000, rate) for rate in (0.05, 0.1, 0.2, 0.4)]
    assert by_rate == sorted(by_rate)
    assert len(set(by_rate)) == 4


def test_mde_is_infinite_when_nothing_is_detectable() -> None:
    assert minimum_detectable_difference(1000, 0.0) == math.inf
    # 10 items with 5% discordance: even a difference of psi = 0.05 cannot reach 80% power.
    assert minimum_detectable_difference(10, 0.05) == math.inf


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 0, "discordant_rate": 0.1}, "n_items"),
        ({"n_items": 100, "discordant_rate": 1.5}, "discordant_rate"),
        ({"n_items": 100, "discordant_rate": 0.1, "alpha": 0.0}, "alpha"),
        ({"n_items": 100, "discordant_rate": 0.1, "power": 0.3}, "power"),
    ],
)
def test_mde_rejects_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        minimum_detectable_difference(**kwargs)  # type: ignore[arg-type]


# --- validation --------------------------------------------------------------------------


def test_stratum_validation_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="empty stratum"):
        Stratum(np.zeros((0, 2)), np.array([]))
    with pytest.raises(ValueError, match="3 items but clusters"):
        Stratum(np.zeros((3, 2)), np.array([1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        Stratum(np.array([[1.0], [np.nan]]), np.array([1, 2]))
    with pytest.raises(ValueError, match="n_items, n_columns"):
        Stratum(np.zeros((2, 2, 2)), np.array([1, 2]))
    one_column = Stratum(np.array([1, 0, 1]), np.array(["a", "a", "b"]))
    assert (one_column.n_items, one_column.n_columns, one_column.n_clusters) == (3, 1, 2)


def test_strata_and_arguments_are_checked() -> None:
    two = Stratum.unclustered(np.zeros((4, 2)))
    three = Stratum.unclustered(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="different numbers of columns"):
        point_estimate([two, three])
    with pytest.raises(ValueError, match="no strata"):
        bootstrap_draws([])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_draws([two], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval(np.zeros((10, 2)), confidence=1.0)
    with pytest.raises(ValueError, match="out of range"):
        paired_difference([two], 0, 2, n_resamples=10)
