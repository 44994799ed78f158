"""The study's comparison: Table 1 with bootstrap CIs, paired differences, McNemar + Holm, breakdowns.

Every figure is computed from the logged per-item scores of the runs (``runs.load_run``):
- EM of a suite is the unweighted mean over its formats (MCQU, MCQ) of the per-format mean EM,
  as the paper averages them; its CI is a stratified bootstrap over questions, resampling
  clusters (e.g. one clinical case) within each format.
- A difference between two models is paired: both are resampled on the same draws.
- McNemar's exact test compares per-item EM in each format; the p-values of every test made
  (all suites, pairs and formats, and the judge's verdicts) are Holm-corrected together.
- The minimum detectable difference is the one McNemar's test detects with 80% power at the
  observed rate of discordant items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lm_eval_medinj.study.published import published
from lm_eval_medinj.study.runs import MCQ_FORMATS, Item, JudgedItem, Run, StudyError, mode_of
from lm_eval_medinj.study.stats import (
    Stratum,
    bootstrap_draws,
    difference_interval,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
    percentile_interval,
    point_estimate,
)

BREAKDOWN_FIELDS = ("provenance", "origin")
_SETTINGS_COMPARED = ("chat_template_sha", "system_instruction_sha", "fewshot_as_multiturn", "n_shot")


@dataclass(frozen=True)
class ReportOptions:
    """Who is compared with whom, and how."""

    baseline: str
    pairs: tuple[tuple[str, str], ...] = ()
    allow_mismatch: bool = False
    n_resamples: int = 10_000
    seed: int = 0
    confidence: float = 0.95


def _interval(estimate: float, low: float, high: float, n: int) -> dict[str, float]:
    return {"estimate": float(estimate), "low": float(low), "high": float(high), "n": int(n)}


@dataclass(frozen=True)
class _Bootstrap:
    """One figure for every run (a column each): its strata, point estimates and bootstrap draws.

    Every paired difference between two runs is read off these draws (the runs share them).
    """

    strata: list[Stratum]
    estimate: np.ndarray
    draws: np.ndarray
    labels: tuple[str, ...] = ()  # what each stratum is (the formats of an EM figure)

    @classmethod
    def of(cls, strata: list[Stratum], options: ReportOptions, labels: Sequence[str] = ()) -> _Bootstrap:
        draws = bootstrap_draws(strata, options.n_resamples, options.seed)
        return cls(strata, point_estimate(strata), draws, tuple(labels))

    @property
    def n(self) -> int:
        return sum(len(stratum.clusters) for stratum in self.strata)

    def cells(self, scale: float, confidence: float) -> list[dict[str, float]]:
        """Each column's estimate and percentile interval."""
        low, high = percentile_interval(self.draws, confidence)
        bounds = zip(self.estimate, low, high, strict=True)
        return [_interval(scale * e, scale * lo, scale * hi, self.n) for e, lo, hi in bounds]

    def difference(self, a: int, b: int, scale: float, confidence: float) -> dict[str, float]:
        """Column a minus column b with its paired interval."""
        diff = difference_interval(self.estimate, self.draws, a, b, confidence)
        return _interval(scale * diff.estimate, scale * diff.low, scale * diff.high, self.n)


def _formats(items: list[list[Item]]) -> list[str]:
    return [fmt for fmt in MCQ_FORMATS if any(item.format == fmt for item in items[0])]


def _strata(runs: Sequence[Run], items: Sequence[list[Item]], metric: str, formats: Sequence[str]) -> list[Stratum]:
    """One stratum per format: a column per run, items in the same order in every column."""
    strata = []
    for fmt in formats:
        rows = [[item for item in run_items if item.format == fmt] for run_items in items]
        if not rows[0]:
            continue
        values = np.array([[getattr(item, metric) for item in row] for row in rows], dtype=float).T
        clusters = np.array([item.cluster for item in rows[0]])
        strata.append(Stratum(values=values, clusters=clusters))
    return strata


def _mismatches(runs: Sequence[Run], suite: str) -> list[str]:
    """What differs between the runs' items and settings on one suite (empty: comparable)."""
    problems = []
    reference = runs[0]
    keys = {item.key for item in reference.suites[suite]}
    for run in runs[1:]:
        other = {item.key for item in run.suites[suite]}
        if other != keys:
            missing, extra = sorted(keys - other)[:5], sorted(other - keys)[:5]
            problems.append(
                f"{suite}: model {run.label} does not cover the same questions as {reference.label} "
                f"(missing {len(keys - other)}: {missing}; extra {len(other - keys)}: {extra})"
            )
    for attribute in ("protocol", "prompt_source"):
        values = {run.label: sorted({getattr(item, attribute) for item in run.suites[suite]}) for run in runs}
        if len({tuple(v) for v in values.values()}) > 1:
            problems.append(f"{suite}: different {attribute}: {values}")
    for key in _SETTINGS_COMPARED:
        values = {run.label: run.settings.get(key) for run in runs}
        if key == "n_shot":
            tasks = {item.task for item in reference.suites[suite]}
            values = {label: {t: (v or {}).get(t) for t in sorted(tasks)} for label, v in values.items()}
        if len({repr(v) for v in values.values()}) > 1:
            problems.append(f"{suite}: different {key}: {values}")
    return problems


def _aligned(runs: Sequence[Run], suite: str) -> list[list[Item]]:
    """Each run's items of the suite, restricted to the questions all runs share, in one order."""
    shared = set.intersection(*({item.key for item in run.suites[suite]} for run in runs))
    return [sorted((item for item in run.suites[suite] if item.key in shared), key=lambda i: i.key) for run in runs]


def check_comparable(runs: Sequence[Run], options: ReportOptions) -> tuple[list[str], list[str]]:
    """The suites every run has, and the mismatches found; raises unless ``allow_mismatch``."""
    labels = [run.label for run in runs]
    if len(set(labels)) != len(labels):
        raise StudyError(f"model labels must differ: {labels}")
    if options.baseline not in labels:
        raise StudyError(f"--baseline {options.baseline!r} is not one of the models: {', '.join(labels)}")
    for a, b in options.pairs:
        if a not in labels or b not in labels:
            raise StudyError(f"--compare {a}:{b}: both must be among the models ({', '.join(labels)})")
    all_suites = sorted(set().union(*(run.suites for run in runs)))
    suites = [suite for suite in all_suites if all(suite in run.suites for run in runs)]
    problems = [
        f"{suite}: only in {', '.join(run.label for run in runs if suite in run.suites)}"
        for suite in all_suites
        if suite not in suites
    ]
    for suite in suites:
        problems += _mismatches(runs, suite)
    if problems and not options.allow_mismatch:
        raise StudyError(
            "the runs are not comparable (pass --allow-mismatch to compare the shared questions anyway, "
            "which the report then states):\n  " + "\n  ".join(problems)
        )
    return suites, problems


def _suite_table(
    runs: Sequence[Run], items: list[list[Item]], options: ReportOptions
) -> tuple[dict[str, Any], _Bootstrap]:
    """Per model: EM (mean over formats) with its CI, EM per format, Hamming on MCQ; and the EM bootstrap."""
    formats = _formats(items)
    table: dict[str, Any] = {run.label: {} for run in runs}
    metrics = [("em", "em", formats)] + [(f"em_{fmt}", "em", [fmt]) for fmt in formats]
    if "mcq" in formats:
        metrics.append(("hamming_mcq", "hamming", ["mcq"]))
    bootstraps = {
        name: _Bootstrap.of(_strata(runs, items, attribute, chosen), options, chosen)
        for name, attribute, chosen in metrics
    }
    for name, bootstrap in bootstraps.items():
        for run, cell in zip(runs, bootstrap.cells(100, options.confidence), strict=True):
            table[run.label][name] = cell
    return table, bootstraps["em"]


def _finite(value: float) -> float | None:
    """``None`` for a difference no test could detect (no discordant item, too few items)."""
    return value if np.isfinite(value) else None


def _pairs(labels: Sequence[str], options: ReportOptions) -> list[tuple[str, str]]:
    pairs = [(label, options.baseline) for label in labels if label != options.baseline]
    return pairs + [pair for pair in options.pairs if pair not in pairs]


def _comparison(em: _Bootstrap, a: int, b: int, options: ReportOptions) -> dict[str, Any]:
    """Paired difference of EM (a - b, points) and McNemar + MDE per format (one stratum each)."""
    tests = {}
    for fmt, stratum in zip(em.labels, em.strata, strict=True):
        correct_a, correct_b = stratum.values[:, a] >= 0.5, stratum.values[:, b] >= 0.5
        test = mcnemar_exact(correct_a, correct_b)
        n = len(correct_a)
        tests[fmt] = {
            "n": n,
            "only_a": test.only_a,
            "only_b": test.only_b,
            "p_value": test.p_value,
            "mde_points": _finite(100 * minimum_detectable_difference(n, test.discordant_rate)),
        }
    return {"difference": em.difference(a, b, 100, options.confidence), "mcnemar": tests}


def _judge_items(runs: Sequence[Run], allow_mismatch: bool) -> list[list[JudgedItem]] | None:
    if not all(run.judged for run in runs):
        return None
    shared = set.intersection(*({item.key for item in run.judged} for run in runs))
    if not allow_mismatch and any({item.key for item in run.judged} != shared for run in runs):
        raise StudyError("the judge outputs do not cover the same answers in every model (pass --allow-mismatch)")
    return [sorted((item for item in run.judged if item.key in shared), key=lambda i: i.key) for run in runs]


def _judge_table(
    runs: Sequence[Run], judged: list[list[JudgedItem]], options: ReportOptions
) -> tuple[dict[str, Any], _Bootstrap]:
    """Per model: mean verdict with CI, mean P(equivalent), calibrated P, length-controlled, words;
    and the verdicts' bootstrap."""
    table: dict[str, Any] = {run.label: {} for run in runs}
    clusters = np.array([item.cluster for item in judged[0]])
    columns = {
        "verdict": lambda item: item.verdict,
        "p_equivalent": lambda item: item.p_equivalent,
        "words": lambda item: item.words,
    }
    if all(item.p_calibrated is not None for run_items in judged for item in run_items):
        columns["p_calibrated"] = lambda item: item.p_calibrated
    bootstraps = {}
    for name, read in columns.items():
        values = np.array([[read(i) for i in row] for row in judged], dtype=float).T
        bootstraps[name] = _Bootstrap.of([Stratum(values=values, clusters=clusters)], options)
        for run, cell in zip(runs, bootstraps[name].cells(1, options.confidence), strict=True):
            table[run.label][name] = cell
    for run in runs:
        controlled = [s.get("length_controlled") for s in run.judge_summaries if s.get("length_controlled")]
        table[run.label]["length_controlled"] = controlled[0] if len(controlled) == 1 else controlled or None
    return table, bootstraps["verdict"]


def _breakdown(runs: Sequence[Run], items: list[list[Item]], options: ReportOptions) -> dict[str, Any]:
    """EM per provenance and per origin, for each model, and each model's paired difference from the baseline."""
    base = [run.label for run in runs].index(options.baseline)
    result: dict[str, Any] = {}
    for field_name in BREAKDOWN_FIELDS:
        values = sorted({getattr(item, field_name) for item in items[0]})
        result[field_name] = {}
        for value in values:
            keep = [i for i, item in enumerate(items[0]) if getattr(item, field_name) == value]
            subset = [[run_items[i] for i in keep] for run_items in items]
            table, em = _suite_table(runs, subset, options)
            for column, run in enumerate(runs):
                if column != base:
                    table[run.label]["difference_from_baseline"] = em.difference(column, base, 100, options.confidence)
            result[field_name][value] = table
    return result


def build_report(runs: Sequence[Run], options: ReportOptions) -> dict[str, Any]:
    """Everything the report shows, as plain JSON."""
    suites, problems = check_comparable(runs, options)
    labels = [run.label for run in runs]
    report: dict[str, Any] = {
        "models": {run.label: {"folder": str(run.folder), "settings": run.settings} for run in runs},
        "baseline": options.baseline,
        "bootstrap": {"resamples": options.n_resamples, "seed": options.seed, "confidence": options.confidence},
        "mismatches": problems,
        "suites": {},
        "comparisons": [],
        "published": {label: published(label) for label in labels if published(label) is not None},
    }
    tests: list[tuple[dict[str, Any], float]] = []
    for suite in suites:
        items = _aligned(runs, suite)
        table, em = _suite_table(runs, items, options)
        breakdown = _breakdown(runs, items, options)
        report["suites"][suite] = {"mode": mode_of(suite), "table": table, "breakdown": breakdown}
        for a, b in _pairs(labels, options):
            comparison = {"suite": suite, "a": a, "b": b, **_comparison(em, labels.index(a), labels.index(b), options)}
            report["comparisons"].append(comparison)
            tests += [(test, test["p_value"]) for test in comparison["mcnemar"].values()]
    judged = _judge_items(runs, options.allow_mismatch)
    if judged is not None:
        judge_table, verdicts = _judge_table(runs, judged, options)
        report["judge"] = {"table": judge_table, "comparisons": []}
        values = verdicts.strata[0].values
        for a, b in _pairs(labels, options):
            ia, ib = labels.index(a), labels.index(b)
            test = mcnemar_exact(values[:, ia] >= 0.5, values[:, ib] >= 0.5)
            entry = {
                "a": a,
                "b": b,
                "difference": verdicts.difference(ia, ib, 1, options.confidence),
                "mcnemar": {"n": verdicts.n, "only_a": test.only_a, "only_b": test.only_b, "p_value": test.p_value},
            }
            report["judge"]["comparisons"].append(entry)
            tests.append((entry["mcnemar"], test.p_value))
    for (test, _), adjusted in zip(tests, holm([p for _, p in tests]), strict=True):
        test["p_holm"] = adjusted
    report["tests_corrected"] = len(tests)
    return report
