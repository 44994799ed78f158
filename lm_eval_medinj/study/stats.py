"""Statistics of a study report: models compared on the same questions.

A figure is a stratified mean: each stratum (a question format, say MCQU and MCQ) has a mean per
column (a model), and the figure is the unweighted mean of the stratum means, as in the paper's
headline score. Its 95% interval comes from a bootstrap over questions: each stratum is resampled
on its own, drawing clusters (several questions on one clinical case) with replacement, so that
correlated questions widen the interval as they should. The columns share every draw, so the
draws of a difference between two columns give a paired interval. Figures that resample the same
clusters from the same stream share one computation of the draws (:func:`bootstrap_many`).

A configuration trained with several seeds is several runs (columns) on the same questions. Its
figure is the mean over its seeds; its interval comes from a two-level bootstrap: each resample
draws the questions (as above, shared by every run) and, independently for each configuration,
its seeds with replacement, and takes the mean over the drawn seeds (:func:`seed_picks`,
:func:`grouped_draws`). Seeds and questions are crossed (every seed answers every question);
resampling both is Owen's (2007) "pigeonhole" bootstrap, slightly conservative.

Pairs of models are also compared item by item with McNemar's exact test, the p-values of the
comparisons made are Holm-corrected, and the minimum detectable difference says how large a
difference the number of questions could reveal. Distributions and quantiles come from SciPy.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

# Draws held in memory at once per stratum (rows of the resample matrix times clusters).
_BLOCK_ELEMENTS = 1 << 20


def cluster_codes(labels: Sequence[Hashable | None]) -> np.ndarray:
    """Integer cluster codes, numbered by first appearance; an item labelled ``None`` is its own cluster."""
    codes: dict[Hashable, int] = {}
    out = np.empty(len(labels), dtype=np.int64)
    n_codes = 0
    for i, label in enumerate(labels):
        if label is None:
            out[i] = n_codes
            n_codes += 1
            continue
        code = codes.get(label)
        if code is None:
            code = codes[label] = n_codes
            n_codes += 1
        out[i] = code
    return out


@dataclass(frozen=True, eq=False)
class Stratum:
    """The items of one stratum: a value per item and column, and each item's cluster.

    ``values`` is ``(n_items, n_columns)`` (a 1-D array is one column); ``clusters`` holds one
    label per item (str or int; ``None`` makes the item its own cluster). Give every item a
    distinct label for an item-level bootstrap. Clusters are numbered by first appearance.

    ``weights`` (one non-negative number per item, default 1) makes the stratum's mean the
    weighted mean ``sum(w * v) / sum(w)``, in the data and in every resample, while the clusters
    drawn stay all of them: 0/1 weights give the mean of a subset of the items on the very draws
    of the whole stratum (the clean-subset score beside the full one).
    """

    values: np.ndarray
    clusters: np.ndarray
    weights: np.ndarray | None = None
    _codes: np.ndarray = field(init=False, repr=False)
    _cluster_sums: np.ndarray = field(init=False, repr=False)  # (n_columns, n_clusters)
    _cluster_sizes: np.ndarray = field(init=False, repr=False)  # (n_clusters,)
    _integral: bool = field(init=False, repr=False)  # sums of resampled clusters are exact integers

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(f"stratum values must be (n_items, n_columns), got shape {values.shape}")
        n_items, n_columns = values.shape
        if n_items == 0:
            raise ValueError("empty stratum: it has no items")
        if n_columns == 0:
            raise ValueError("stratum values have no columns")
        if not np.isfinite(values).all():
            raise ValueError("stratum values hold NaN or infinite entries")
        clusters = np.asarray(self.clusters)
        if clusters.ndim != 1 or len(clusters) != n_items:
            raise ValueError(f"stratum has {n_items} items but clusters have shape {clusters.shape}")
        codes = cluster_codes(clusters.tolist())
        n_clusters = int(codes.max()) + 1
        sums = np.zeros((n_clusters, n_columns))
        if self.weights is None:
            np.add.at(sums, codes, values)
            sizes = np.bincount(codes, minlength=n_clusters).astype(float)
        else:
            weights = np.asarray(self.weights, dtype=float)
            if weights.shape != (n_items,):
                raise ValueError(f"stratum has {n_items} items but weights have shape {weights.shape}")
            if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() == 0:
                raise ValueError("stratum weights must be finite, non-negative and not all zero")
            np.add.at(sums, codes, values * weights[:, None])
            sizes = np.bincount(codes, weights=weights, minlength=n_clusters)
            object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "clusters", clusters)
        object.__setattr__(self, "_codes", codes)
        object.__setattr__(self, "_cluster_sums", np.ascontiguousarray(sums.T))
        object.__setattr__(self, "_cluster_sizes", sizes)
        both = np.concatenate([sums.ravel(), sizes])
        largest = n_clusters * float(np.abs(both).max())  # a resample draws at most n_clusters clusters
        object.__setattr__(self, "_integral", bool(np.array_equal(both, np.round(both)) and largest < 2**53))

    @classmethod
    def unclustered(cls, values: np.ndarray) -> Stratum:
        """A stratum whose items are each their own cluster (item-level bootstrap)."""
        values = np.asarray(values, dtype=float)
        return cls(values, np.arange(values.shape[0] if values.ndim else 0))

    @property
    def n_items(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_clusters(self) -> int:
        return int(self._cluster_sizes.shape[0])

    def mean(self) -> np.ndarray:
        """Each column's (weighted) mean over the items: shape ``(n_columns,)``."""
        if self.weights is None:
            return self.values.mean(axis=0)
        return (self.weights @ self.values) / self.weights.sum()

    def fingerprint(self) -> bytes:
        """A digest of what the stratum's resamples depend on: its cluster sums and sizes."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self._cluster_sums, self._cluster_sizes):
            digest.update(repr(array.shape).encode())
            digest.update(array.tobytes())
        return digest.digest()


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """Column a minus column b: the point difference and its paired bootstrap interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test: items only a got right, only b got right, the two-sided p-value."""

    only_a: int
    only_b: int
    p_value: float
    n_items: int

    @property
    def discordant_rate(self) -> float:
        """The share of items on which a and b disagree (0 when there are no items)."""
        return (self.only_a + self.only_b) / self.n_items if self.n_items else 0.0


def _checked(strata: Sequence[Stratum]) -> tuple[Stratum, ...]:
    strata = tuple(strata)
    if not strata:
        raise ValueError("no strata given")
    widths = {s.n_columns for s in strata}
    if len(widths) != 1:
        raise ValueError(f"strata have different numbers of columns: {sorted(widths)}")
    return strata


def point_estimate(strata: Sequence[Stratum]) -> np.ndarray:
    """The unweighted mean over strata of each column's mean: shape ``(n_columns,)``."""
    strata = _checked(strata)
    return np.mean([s.mean() for s in strata], axis=0)


@dataclass
class _Node:
    """Strata resampled after the same sequence of cluster counts: they share one stream of draws."""

    n_clusters: int
    strata: dict[bytes, Stratum] = field(default_factory=dict)  # by fingerprint: each content once
    children: dict[int, _Node] = field(default_factory=dict)


def _node_draws(node: _Node, n_resamples: int, rng: np.random.Generator) -> dict[bytes, np.ndarray]:
    """Each stratum's resampled column means at one node (ratio estimator over the drawn clusters).

    Advances ``rng`` past the node's draws even when it holds no stratum (a prefix of other figures).
    A block of resamples is a matrix of cluster counts, one row per resample; a stratum's sums over
    the drawn clusters are that matrix times its cluster sums. Strata whose sums are integers
    (0/1 scores, counts of words, 0/1 weights) take one matrix product for all their columns: every
    partial sum is an integer below 2**53, so the result is exact whatever the order of summation.
    The others take one matrix-vector product per column, in blocks of the same shape whatever the
    node holds, so that their sums are rounded the same from one report to the next.
    """
    k = node.n_clusters
    strata = list(node.strata.items())
    out = {key: np.empty((n_resamples, stratum.n_columns)) for key, stratum in strata}
    exact = [(key, stratum) for key, stratum in strata if stratum._integral]
    rounded = [(key, stratum) for key, stratum in strata if not stratum._integral]
    if exact:  # one matrix: each stratum's cluster sizes, then its cluster sums, column after column
        stacked = np.column_stack([np.vstack([s._cluster_sizes, s._cluster_sums]).T for _, s in exact])
    rows = max(1, _BLOCK_ELEMENTS // k)
    counts = np.empty((min(rows, n_resamples), k))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        block = stop - start
        # Row r of the block is rng.integers(0, k, size=k): the Generator yields the same stream
        # whether the rows are drawn one by one or as a (block, k) matrix, in int32 or int64.
        picks = rng.integers(0, k, size=(block, k), dtype=np.int32 if k < 2**31 else np.int64)
        if not strata:
            continue
        drawn_counts = counts[:block]
        for row in range(block):  # one row at a time: the counts stay in cache
            drawn_counts[row] = np.bincount(picks[row], minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):  # weights: a resample may draw none
            if exact:
                sums = drawn_counts @ stacked
                offset = 0
                for key, stratum in exact:
                    width = stratum.n_columns
                    out[key][start:stop] = sums[:, offset + 1 : offset + 1 + width] / sums[:, offset, None]
                    offset += 1 + width
            for key, stratum in rounded:
                drawn = drawn_counts @ stratum._cluster_sizes
                for column in range(stratum.n_columns):
                    out[key][start:stop, column] = (drawn_counts @ stratum._cluster_sums[column]) / drawn
    return out


def _walk(
    nodes: dict[int, _Node], prefix: tuple[int, ...], n_resamples: int, rng: np.random.Generator, found: dict
) -> None:
    """Draw every node below a prefix, each from the generator's state after the prefix's draws."""
    for node in nodes.values():
        node_rng = copy.deepcopy(rng)
        path = (*prefix, node.n_clusters)
        for key, draws in _node_draws(node, n_resamples, node_rng).items():
            found[path, key] = draws
        _walk(node.children, path, n_resamples, node_rng, found)


def bootstrap_many(figures: Sequence[Sequence[Stratum]], n_resamples: int = 10_000, seed: int = 0) -> list[np.ndarray]:
    """:func:`bootstrap_draws` of each figure (a sequence of strata), every distinct draw made once.

    A stratum's resampled means depend only on the seed, the numbers of clusters of the strata
    drawn before it in its figure (their draws advance the generator), its own number of clusters,
    and its cluster sums and sizes. Strata alike in all of these, in any figures, are resampled
    once; strata that differ only in their values share the draws of clusters. The results are
    exactly those of :func:`bootstrap_draws` called figure by figure. The matrix products run on
    one BLAS thread: these are matrix-vector products, which threads only slow down.
    """
    checked = [_checked(strata) for strata in figures]
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    root: dict[int, _Node] = {}
    for strata in checked:
        nodes = root
        for stratum in strata:
            node = nodes.setdefault(stratum.n_clusters, _Node(stratum.n_clusters))
            node.strata.setdefault(stratum.fingerprint(), stratum)
            nodes = node.children
    found: dict[tuple[tuple[int, ...], bytes], np.ndarray] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        _walk(root, (), n_resamples, np.random.default_rng(seed), found)
    results = []
    for strata in checked:
        total = np.zeros((n_resamples, strata[0].n_columns))
        path: tuple[int, ...] = ()
        for stratum in strata:
            path = (*path, stratum.n_clusters)
            total += found[path, stratum.fingerprint()]
        results.append(total / len(strata))
    return results


def bootstrap_draws(strata: Sequence[Stratum], n_resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """The stratified cluster bootstrap of :func:`point_estimate`: shape ``(n_resamples, n_columns)``.

    Draw order, from one ``np.random.default_rng(seed)``: the strata in the order given; for each,
    with its ``k`` clusters numbered by first appearance, ``n_resamples`` successive calls
    ``rng.integers(0, k, size=k)``, one per resample in order, each giving the clusters drawn
    (with replacement). A resample's stratum mean is the sum of the drawn clusters' item values
    over the number of items drawn (both weighted by the item weights, if any); its statistic is
    the unweighted mean of its stratum means.
    All columns share the draws, so differences between columns are paired. With every item its
    own cluster this is the ordinary item bootstrap ``values[rng.integers(0, n, size=n)].mean()``.
    """
    return bootstrap_many([strata], n_resamples, seed)[0]


def seed_picks(group_sizes: Sequence[int], n_resamples: int, seed: int) -> list[np.ndarray | None]:
    """The training seeds drawn, per resample, for each group of runs (a configuration's seeds).

    From ``np.random.default_rng([seed, 1])`` (a stream apart from the questions' draws, so that
    groups of one run leave every figure as it was): for each group of more than one run, in
    order, one matrix ``rng.integers(0, size, size=(n_resamples, size))``, row r the runs drawn
    (with replacement) for resample r; ``None`` for a group of one run.
    """
    rng = np.random.default_rng([seed, 1])
    return [rng.integers(0, size, size=(n_resamples, size)) if size > 1 else None for size in group_sizes]


def grouped_draws(
    draws: np.ndarray, groups: Sequence[Sequence[int]], picks: Sequence[np.ndarray | None] | None
) -> np.ndarray:
    """Each group's resampled figure from its runs' draws: shape ``(n_resamples, n_groups)``.

    ``draws`` has one column per run (every run resampled on the same questions); a group is the
    list of its runs' columns. With ``picks`` (from :func:`seed_picks`), a resample's figure is the
    mean over the runs drawn for it of their draws: the two-level bootstrap over training seeds
    and questions. With ``picks=None`` it is the mean over all the group's runs: seeds held
    fixed, questions resampled. A group of one run is that run's draws, unchanged.
    """
    draws = np.asarray(draws, dtype=float)
    out = np.empty((draws.shape[0], len(groups)))
    for index, columns in enumerate(groups):
        chosen = draws[:, list(columns)]
        drawn = None if picks is None else picks[index]
        if len(columns) == 1:
            out[:, index] = chosen[:, 0]
        elif drawn is None:
            out[:, index] = chosen.mean(axis=1)
        else:
            out[:, index] = np.take_along_axis(chosen, drawn, axis=1).mean(axis=1)
    return out


def grouped_estimate(estimates: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Each group's point estimate: the mean of its runs' estimates (a group of one: that run's)."""
    estimates = np.asarray(estimates, dtype=float)
    return np.array(
        [estimates[list(columns)].mean() if len(columns) > 1 else estimates[columns[0]] for columns in groups]
    )


def percentile_interval(draws: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval of each column of ``draws`` (``np.quantile``, linear)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    draws = np.asarray(draws, dtype=float)
    if draws.ndim == 0 or draws.shape[0] == 0:
        raise ValueError("no bootstrap draws given")
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], axis=0)
    return low, high


def mean_interval(
    strata: Sequence[Stratum], n_resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> list[Interval]:
    """Each column's point estimate with its stratified cluster bootstrap interval."""
    estimate = point_estimate(strata)
    low, high = percentile_interval(bootstrap_draws(strata, n_resamples, seed), confidence)
    return [Interval(float(e), float(lo), float(hi)) for e, lo, hi in zip(estimate, low, high, strict=True)]


def difference_interval(
    estimates: np.ndarray, draws: np.ndarray, a: int, b: int, confidence: float = 0.95
) -> Difference:
    """Column a minus column b from precomputed point estimates and bootstrap draws."""
    estimates = np.asarray(estimates, dtype=float)
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or estimates.shape != draws.shape[1:]:
        raise ValueError(f"draws of shape {draws.shape} do not match estimates of shape {estimates.shape}")
    for name, column in (("a", a), ("b", b)):
        if not 0 <= column < estimates.shape[0]:
            raise ValueError(f"column {name}={column} is out of range for {estimates.shape[0]} columns")
    low, high = percentile_interval(draws[:, a] - draws[:, b], confidence)
    return Difference(float(estimates[a] - estimates[b]), float(low), float(high))


def paired_difference(
    strata: Sequence[Stratum], a: int, b: int, n_resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> Difference:
    """Column a minus column b with a paired bootstrap interval (both resampled on the same questions)."""
    return difference_interval(point_estimate(strata), bootstrap_draws(strata, n_resamples, seed), a, b, confidence)


def _as_correct(name: str, correct: np.ndarray) -> np.ndarray:
    array = np.asarray(correct)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        array = array.astype(bool)
    return array


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> McNemar:
    """McNemar's exact two-sided test on paired per-item correctness (binomial test on the discordant pairs).

    p is ``scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue``, and 1.0 with no discordant pair.
    """
    a = _as_correct("a_correct", a_correct)
    b = _as_correct("b_correct", b_correct)
    if a.shape != b.shape:
        raise ValueError(f"a_correct has {a.shape[0]} items but b_correct has {b.shape[0]}")
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(b & ~a))
    discordant = only_a + only_b
    p_value = float(stats.binomtest(only_a, discordant, 0.5).pvalue) if discordant else 1.0
    return McNemar(only_a, only_b, p_value, int(a.shape[0]))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (step-down, monotone, capped at 1).

    SciPy has no Holm correction (``scipy.stats.false_discovery_control`` is Benjamini-Hochberg/Yekutieli).
    The i-th smallest of m p-values (i from 0) becomes ``max over j <= i of min(1, (m - j) * p_(j))``.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be a flat sequence, got shape {p.shape}")
    if np.isnan(p).any() or ((p < 0) | (p > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = p.shape[0]
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def minimum_detectable_difference(
    n_items: int, discordant_rate: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest difference in accuracy between two models that McNemar's test detects with this power.

    Connor's (1987, Biometrics 43:207-211) normal approximation for paired proportions: with
    discordant rate psi = p10 + p01 and difference delta = p10 - p01, McNemar's two-sided test at
    level alpha has the given power when
    ``sqrt(n) * delta = z(1 - alpha/2) * sqrt(psi) + z(power) * sqrt(psi - delta**2)``,
    solved here for delta by ``scipy.optimize.brentq`` on [0, psi] (quantiles from ``scipy.stats.norm``).
    Returns ``math.inf`` when no difference is detectable: when even delta = psi, the largest
    difference that discordant rate allows, falls short, which includes a discordant rate of 0
    (models that always agree cannot be told apart).
    """
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    if not 0 <= discordant_rate <= 1:
        raise ValueError(f"discordant_rate must be in [0, 1], got {discordant_rate}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.5 <= power < 1:
        raise ValueError(f"power must be in [0.5, 1), got {power}")
    if discordant_rate == 0:
        return math.inf
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    psi = float(discordant_rate)

    def shortfall(delta: float) -> float:
        return math.sqrt(n_items) * delta - z_alpha * math.sqrt(psi) - z_power * math.sqrt(max(psi - delta**2, 0.0))

    if shortfall(psi) < 0:
        return math.inf
    return float(optimize.brentq(shortfall, 0.0, psi, xtol=1e-14, rtol=1e-12))
