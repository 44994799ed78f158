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
- Several runs under one label are one configuration trained with several seeds: its figure is
  the mean over seeds, with the between-seed standard deviation, and its intervals (and paired
  differences) come from a two-level bootstrap over seeds and questions (``stats.grouped_draws``).
  McNemar's test compares two fixed models, so it is not run for a configuration with several
  seeds: the seed-aware interval of the difference is the comparison there.
- With an overlap file (``--exclude``), each suite also gets Table 1 on its clean questions (those
  no training example overlaps) and, per model, full minus clean with its interval: both scores
  on the same resamples (the clean score of a resample is the mean over its clean questions).

All bootstrap figures are registered first and drawn together (``stats.bootstrap_many``): a draw
shared by several figures (EM and EM per format, the clean subset, ...) is made once.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lm_eval_medinj.study.human import human_section
from lm_eval_medinj.study.published import published
from lm_eval_medinj.study.runs import MCQ_FORMATS, Item, JudgedItem, Run, StudyError, mode_of
from lm_eval_medinj.study.stats import (
    Stratum,
    bootstrap_many,
    grouped_draws,
    grouped_estimate,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
    percentile_interval,
    point_estimate,
    seed_picks,
)

if TYPE_CHECKING:
    from lm_eval_medinj.annotate.folder import AnnotationFolder
    from lm_eval_medinj.study.exclude import Flagged

BREAKDOWN_FIELDS = ("provenance", "origin")
# What makes two runs' protocols differ. The template's text belongs to the model (each family has
# its own); whether one was applied is the protocol.
_SETTINGS_COMPARED = ("chat_template_applied", "system_instruction_sha", "fewshot_as_multiturn", "n_shot")
_ITEM_SETTINGS = ("protocol", "prompt_source")


@dataclass(frozen=True)
class ReportOptions:
    """Who is compared with whom, and how."""

    baseline: str
    pairs: tuple[tuple[str, str], ...] = ()
    allow_mismatch: bool = False
    n_resamples: int = 10_000
    seed: int = 0
    confidence: float = 0.95
    exclude: Flagged | None = None
    human: AnnotationFolder | None = None  # a `medinj annotate` folder, read: the human column


def _interval(estimate: float, low: float, high: float, n: int) -> dict[str, Any]:
    def number(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None  # a resample with no clean question: no interval

    return {"estimate": float(estimate), "low": number(low), "high": number(high), "n": int(n)}


@dataclass(frozen=True)
class _Labels:
    """The report's columns: each label's runs (several: its training seeds) and their seed draws."""

    names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    picks: list[np.ndarray | None]

    @classmethod
    def of(cls, runs: Sequence[Run], options: ReportOptions) -> _Labels:
        names = tuple(dict.fromkeys(run.label for run in runs))
        groups = tuple(tuple(i for i, run in enumerate(runs) if run.label == name) for name in names)
        return cls(names, groups, seed_picks([len(g) for g in groups], options.n_resamples, options.seed))

    def index(self, label: str) -> int:
        return self.names.index(label)

    def single(self, label: int) -> int | None:
        """The run of a label trained once; None for several seeds."""
        group = self.groups[label]
        return group[0] if len(group) == 1 else None


@dataclass(eq=False)
class _Bootstrap:
    """One figure for every run (a column each): its strata, point estimates and, once drawn, its draws.

    Labels combine their runs (seeds); every paired difference between labels is read off the draws.
    """

    strata: list[Stratum]
    labels: _Labels
    formats: tuple[str, ...] = ()  # what each stratum is (the formats of an EM figure)
    draws: np.ndarray | None = None
    estimate: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.estimate = point_estimate(self.strata)

    @property
    def n(self) -> int:
        kept = [s.n_items if s.weights is None else int(np.count_nonzero(s.weights)) for s in self.strata]
        return sum(kept)

    def _drawn(self) -> np.ndarray:
        if self.draws is None:
            raise RuntimeError("the report's figures have not been drawn yet")
        return self.draws

    def label_estimates(self) -> np.ndarray:
        return grouped_estimate(self.estimate, self.labels.groups)

    def label_draws(self, seeds: bool = True) -> np.ndarray:
        """Each label's resampled figure: seeds resampled too (``seeds``) or held fixed."""
        return grouped_draws(self._drawn(), self.labels.groups, self.labels.picks if seeds else None)

    def cells(self, scale: float, confidence: float) -> list[dict[str, Any]]:
        """Each label's estimate and percentile interval; with several seeds, also the seed figures."""
        estimates = self.label_estimates()
        low, high = percentile_interval(self.label_draws(), confidence)
        fixed_low, fixed_high = percentile_interval(self.label_draws(seeds=False), confidence)
        cells = []
        for index, group in enumerate(self.labels.groups):
            cell = _interval(scale * estimates[index], scale * low[index], scale * high[index], self.n)
            if len(group) > 1:
                per_seed = [scale * float(self.estimate[column]) for column in group]
                cell["seeds"] = len(group)
                cell["seed_sd"] = statistics.stdev(per_seed)  # exact arithmetic: 0 when the seeds agree
                cell["per_seed"] = per_seed
                questions_only = _interval(0, scale * fixed_low[index], scale * fixed_high[index], self.n)
                cell["questions_only"] = {"low": questions_only["low"], "high": questions_only["high"]}
            cells.append(cell)
        return cells

    def difference(self, a: int, b: int, scale: float, confidence: float) -> dict[str, Any]:
        """Label a minus label b with its paired interval."""
        return self.minus(self, a, b, scale, confidence)

    def minus(self, other: _Bootstrap, a: int, b: int, scale: float, confidence: float) -> dict[str, Any]:
        """Label a of this figure minus label b of ``other`` (drawn on the same resamples), paired."""
        estimate = self.label_estimates()[a] - other.label_estimates()[b]
        diffs = self.label_draws()[:, a] - other.label_draws()[:, b]
        low, high = percentile_interval(diffs, confidence)
        return _interval(scale * estimate, scale * low, scale * high, self.n)


class _Figures:
    """Every bootstrap figure of a report, registered first and drawn together."""

    def __init__(self, labels: _Labels, options: ReportOptions) -> None:
        self.labels = labels
        self.options = options
        self._figures: list[_Bootstrap] = []

    def add(self, strata: list[Stratum], formats: Sequence[str] = ()) -> _Bootstrap:
        figure = _Bootstrap(strata, self.labels, tuple(formats))
        self._figures.append(figure)
        return figure

    def draw(self) -> None:
        strata = [figure.strata for figure in self._figures]
        drawn = bootstrap_many(strata, self.options.n_resamples, self.options.seed)
        for figure, draws in zip(self._figures, drawn, strict=True):
            figure.draws = draws


def _formats(items: list[list[Item]]) -> list[str]:
    return [fmt for fmt in MCQ_FORMATS if any(item.format == fmt for item in items[0])]


def _strata(
    items: Sequence[list[Item]], metric: str, formats: Sequence[str], keep: Callable[[Item], bool] | None = None
) -> list[Stratum]:
    """One stratum per format: a column per run, items in the same order in every column.

    With ``keep``, the questions it rejects weigh 0: the figure of the kept questions, drawn on
    the resamples of all of them."""
    strata = []
    for fmt in formats:
        rows = [[item for item in run_items if item.format == fmt] for run_items in items]
        if not rows[0]:
            continue
        values = np.array([[getattr(item, metric) for item in row] for row in rows], dtype=float).T
        clusters = np.array([item.cluster for item in rows[0]])
        weights = None if keep is None else np.array([keep(item) for item in rows[0]], dtype=float)
        strata.append(Stratum(values=values, clusters=clusters, weights=weights))
    return strata


def _name(run: Run, runs: Sequence[Run]) -> str:
    """The label, with the folder when the label has several runs (seeds)."""
    return run.label if sum(other.label == run.label for other in runs) == 1 else f"{run.label} ({run.folder})"


def _mismatches(runs: Sequence[Run], suite: str) -> list[str]:
    """What differs between the runs' items and settings on one suite (empty: comparable)."""
    problems = []
    reference = runs[0]
    keys = {item.key for item in reference.suites[suite]}
    formats = {item.key: item.format for item in reference.suites[suite]}
    for run in runs[1:]:
        other = {item.key for item in run.suites[suite]}
        if other != keys:
            missing, extra = sorted(keys - other)[:5], sorted(other - keys)[:5]
            problems.append(
                f"{suite}: model {_name(run, runs)} does not cover the same questions as {_name(reference, runs)} "
                f"(missing {len(keys - other)}: {_keys(missing)}; extra {len(other - keys)}: {_keys(extra)})"
            )
        changed = sorted(item.key for item in run.suites[suite] if formats.get(item.key, item.format) != item.format)
        if changed:
            problems.append(
                f"{suite}: model {_name(run, runs)} asks {len(changed)} question(s) in another format than "
                f"{_name(reference, runs)} ({_keys(changed[:5])}); those are left out"
            )
    for attribute in _ITEM_SETTINGS:
        values = {_name(run, runs): sorted({getattr(item, attribute) for item in run.suites[suite]}) for run in runs}
        if len({tuple(v) for v in values.values()}) > 1:
            problems.append(f"{suite}: different {attribute}: {values}")
    revisions = {
        _name(run, runs): sorted({item.data_revision or "unknown" for item in run.suites[suite]}) for run in runs
    }
    if len({tuple(v) for v in revisions.values()}) > 1:
        read = "; ".join(f"{name} read {', '.join(values)}" for name, values in revisions.items())
        problems.append(f"{suite}: different data revisions (the dataset revision each run read): {read}")
    for key in _SETTINGS_COMPARED:
        values = {_name(run, runs): run.settings.get(key) for run in runs}
        if key == "n_shot":
            tasks = {item.task for item in reference.suites[suite]}
            values = {label: {t: (v or {}).get(t) for t in sorted(tasks)} for label, v in values.items()}
        if len({repr(v) for v in values.values()}) > 1:
            problems.append(f"{suite}: different {key}: {values}")
    return problems


def _keys(keys: list[tuple[str, ...]]) -> list[str]:
    """Question keys as text: the uid, or ``task/id``."""
    return ["/".join(key) for key in keys]


def _aligned(runs: Sequence[Run], suite: str) -> list[list[Item]]:
    """Each run's items of the suite, restricted to the questions all runs share in one format, in one order."""
    shared = set.intersection(*({(item.key, item.format) for item in run.suites[suite]} for run in runs))
    return [
        sorted((item for item in run.suites[suite] if (item.key, item.format) in shared), key=lambda i: i.key)
        for run in runs
    ]


def check_comparable(runs: Sequence[Run], options: ReportOptions) -> tuple[list[str], list[str]]:
    """The suites every run has, and the mismatches found; raises unless ``allow_mismatch``."""
    spellings: dict[Path, list[str]] = {}
    for run in runs:
        spellings.setdefault(run.folder.resolve(), []).append(str(run.folder))
    repeated = [" = ".join(dict.fromkeys(names)) for names in spellings.values() if len(names) > 1]
    if repeated:
        raise StudyError(f"a run folder is given twice: {', '.join(repeated)}")
    labels = list(dict.fromkeys(run.label for run in runs))
    if options.baseline not in labels:
        raise StudyError(f"--baseline {options.baseline!r} is not one of the models: {', '.join(labels)}")
    for a, b in options.pairs:
        if a not in labels or b not in labels:
            raise StudyError(f"--compare {a}:{b}: both must be among the models ({', '.join(labels)})")
    all_suites = sorted(set().union(*(run.suites for run in runs)))
    suites = [suite for suite in all_suites if all(suite in run.suites for run in runs)]
    problems = [
        f"{suite}: only in {', '.join(_name(run, runs) for run in runs if suite in run.suites)}"
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


def _suite_figures(
    figures: _Figures, items: list[list[Item]], keep: Callable[[Item], bool] | None = None
) -> dict[str, _Bootstrap]:
    """EM (mean over formats), EM per format, Hamming on MCQ: registered, to be drawn."""
    formats = _formats(items)
    metrics = [("em", "em", formats)] + [(f"em_{fmt}", "em", [fmt]) for fmt in formats]
    if "mcq" in formats:
        metrics.append(("hamming_mcq", "hamming", ["mcq"]))
    return {name: figures.add(_strata(items, attribute, chosen, keep), chosen) for name, attribute, chosen in metrics}


def _table(labels: _Labels, suite: dict[str, _Bootstrap], options: ReportOptions) -> dict[str, Any]:
    """Per label: each figure's cell."""
    table: dict[str, Any] = {name: {} for name in labels.names}
    for metric, bootstrap in suite.items():
        for name, cell in zip(labels.names, bootstrap.cells(100, options.confidence), strict=True):
            table[name][metric] = cell
    return table


def _finite(value: float) -> float | None:
    """``None`` for a difference no test could detect (no discordant item, too few items)."""
    return value if np.isfinite(value) else None


def _pairs(labels: Sequence[str], options: ReportOptions) -> list[tuple[str, str]]:
    pairs = [(label, options.baseline) for label in labels if label != options.baseline]
    return pairs + [pair for pair in options.pairs if pair not in pairs]


_SEVERAL_SEEDS = (
    "not run: a model here has several seeds, and McNemar's test compares two fixed models; "
    "the seed-aware interval of the difference is the comparison"
)


def _comparison(em: _Bootstrap, a: int, b: int, options: ReportOptions) -> dict[str, Any]:
    """Paired difference of EM (a - b, points) and McNemar + MDE per format (one stratum each)."""
    result: dict[str, Any] = {"difference": em.difference(a, b, 100, options.confidence)}
    run_a, run_b = em.labels.single(a), em.labels.single(b)
    if run_a is None or run_b is None:
        result["mcnemar"] = {}
        result["mcnemar_note"] = _SEVERAL_SEEDS
        return result
    tests = {}
    for fmt, stratum in zip(em.formats, em.strata, strict=True):
        correct_a, correct_b = stratum.values[:, run_a] >= 0.5, stratum.values[:, run_b] >= 0.5
        test = mcnemar_exact(correct_a, correct_b)
        n = len(correct_a)
        tests[fmt] = {
            "n": n,
            "only_a": test.only_a,
            "only_b": test.only_b,
            "p_value": test.p_value,
            "mde_points": _finite(100 * minimum_detectable_difference(n, test.discordant_rate)),
        }
    result["mcnemar"] = tests
    return result


def _judge_items(runs: Sequence[Run], allow_mismatch: bool) -> list[list[JudgedItem]] | None:
    if not all(run.judged for run in runs):
        return None
    shared = set.intersection(*({item.key for item in run.judged} for run in runs))
    if not allow_mismatch and any({item.key for item in run.judged} != shared for run in runs):
        raise StudyError("the judge outputs do not cover the same answers in every model (pass --allow-mismatch)")
    return [sorted((item for item in run.judged if item.key in shared), key=lambda i: i.key) for run in runs]


def _judge_figures(figures: _Figures, judged: list[list[JudgedItem]]) -> dict[str, _Bootstrap]:
    """Mean verdict, P(equivalent), calibrated P (when every row has one), answer words: registered."""
    clusters = np.array([item.cluster for item in judged[0]])
    columns: dict[str, Callable[[JudgedItem], float | None]] = {
        "verdict": lambda item: item.verdict,
        "p_equivalent": lambda item: item.p_equivalent,
        "words": lambda item: item.words,
    }
    if all(item.p_calibrated is not None for run_items in judged for item in run_items):
        columns["p_calibrated"] = lambda item: item.p_calibrated
    result = {}
    for name, read in columns.items():
        values = np.array([[read(i) for i in row] for row in judged], dtype=float).T
        result[name] = figures.add([Stratum(values=values, clusters=clusters)])
    return result


def _judge_report(
    runs: Sequence[Run], labels: _Labels, bootstraps: dict[str, _Bootstrap], options: ReportOptions
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]:
    """The judge table and comparisons; and the McNemar tests made, for Holm's correction."""
    table: dict[str, Any] = {name: {} for name in labels.names}
    for metric, bootstrap in bootstraps.items():
        for name, cell in zip(labels.names, bootstrap.cells(1, options.confidence), strict=True):
            table[name][metric] = cell
    for index, name in enumerate(labels.names):
        summaries = [s for column in labels.groups[index] for s in runs[column].judge_summaries]
        controlled = [s.get("length_controlled") for s in summaries if s.get("length_controlled")]
        table[name]["length_controlled"] = controlled[0] if len(controlled) == 1 else controlled or None
    verdicts = bootstraps["verdict"]
    values = verdicts.strata[0].values
    comparisons, tests = [], []
    for a, b in _pairs(labels.names, options):
        ia, ib = labels.index(a), labels.index(b)
        entry: dict[str, Any] = {"a": a, "b": b, "difference": verdicts.difference(ia, ib, 1, options.confidence)}
        run_a, run_b = labels.single(ia), labels.single(ib)
        if run_a is None or run_b is None:
            entry["mcnemar"] = None
            entry["mcnemar_note"] = _SEVERAL_SEEDS
        else:
            test = mcnemar_exact(values[:, run_a] >= 0.5, values[:, run_b] >= 0.5)
            entry["mcnemar"] = {"n": verdicts.n, "only_a": test.only_a, "only_b": test.only_b, "p_value": test.p_value}
            tests.append((entry["mcnemar"], test.p_value))
        comparisons.append(entry)
    return {"table": table, "comparisons": comparisons}, tests


@dataclass
class _SuitePlan:
    """A suite's figures, registered before the one draw: Table 1, breakdown, clean subset."""

    items: list[list[Item]]
    table: dict[str, _Bootstrap]
    breakdown: dict[str, dict[str, dict[str, _Bootstrap]]]
    clean: dict[str, _Bootstrap] | None = None
    clean_note: str | None = None


def _plan_suite(figures: _Figures, items: list[list[Item]], exclude: Flagged | None) -> _SuitePlan:
    plan = _SuitePlan(items, _suite_figures(figures, items), {})
    for field_name in BREAKDOWN_FIELDS:
        plan.breakdown[field_name] = {}
        for value in sorted({getattr(item, field_name) for item in items[0]}):
            keep = [i for i, item in enumerate(items[0]) if getattr(item, field_name) == value]
            subset = [[run_items[i] for i in keep] for run_items in items]
            plan.breakdown[field_name][value] = _suite_figures(figures, subset)
    if exclude is not None:
        formats = _formats(items)
        empty = [fmt for fmt in formats if all(item in exclude for item in items[0] if item.format == fmt)]
        if empty:
            plan.clean_note = f"every {', '.join(empty)} question is flagged: no clean score"
        else:
            plan.clean = _suite_figures(figures, items, keep=lambda item: item not in exclude)
    return plan


def _breakdown(labels: _Labels, plan: _SuitePlan, options: ReportOptions) -> dict[str, Any]:
    """EM per provenance and per origin, for each model, and each model's paired difference from the baseline."""
    base = labels.index(options.baseline)
    result: dict[str, Any] = {}
    for field_name, groups in plan.breakdown.items():
        result[field_name] = {}
        for value, suite in groups.items():
            table = _table(labels, suite, options)
            for index, name in enumerate(labels.names):
                if index != base:
                    table[name]["difference_from_baseline"] = suite["em"].difference(
                        index, base, 100, options.confidence
                    )
            result[field_name][value] = table
    return result


def _clean(labels: _Labels, plan: _SuitePlan, exclude: Flagged, options: ReportOptions) -> dict[str, Any]:
    """Table 1 on the clean questions, and full minus clean per model and figure."""
    flagged = sum(item in exclude for item in plan.items[0])
    result: dict[str, Any] = {"flagged": flagged, "clean": len(plan.items[0]) - flagged}
    if plan.clean is None:
        result["note"] = plan.clean_note
        return result
    result["table"] = _table(labels, plan.clean, options)
    result["full_minus_clean"] = {
        name: {
            metric: plan.table[metric].minus(clean, index, index, 100, options.confidence)
            for metric, clean in plan.clean.items()
        }
        for index, name in enumerate(labels.names)
    }
    return result


def _run_entry(run: Run) -> dict[str, Any]:
    keys = ("chat_template_sha", "chat_template_applied", "model_revision", "model_sha", "data_revisions")
    return {"folder": str(run.folder), **{key: run.settings.get(key) for key in keys}}


def build_report(runs: Sequence[Run], options: ReportOptions) -> dict[str, Any]:
    """Everything the report shows, as plain JSON."""
    suites, problems = check_comparable(runs, options)
    labels = _Labels.of(runs, options)
    names = list(labels.names)
    figures = _Figures(labels, options)
    plans = {suite: _plan_suite(figures, _aligned(runs, suite), options.exclude) for suite in suites}
    judged = _judge_items(runs, options.allow_mismatch)
    judge_figures = _judge_figures(figures, judged) if judged is not None else None
    if options.exclude is not None and not any(
        item in options.exclude for plan in plans.values() for item in plan.items[0]
    ):
        raise StudyError(
            f"--exclude {options.exclude.path}: none of its {options.exclude.entries} flagged questions is a "
            f"question of these runs (suites: {', '.join(suites)}): check the tasks it audited"
        )
    figures.draw()

    report: dict[str, Any] = {
        "models": {
            name: {
                "folder": str(runs[group[0]].folder),
                "settings": runs[group[0]].settings,
                "runs": [_run_entry(runs[column]) for column in group],
            }
            for name, group in zip(labels.names, labels.groups, strict=True)
        },
        "baseline": options.baseline,
        "bootstrap": {"resamples": options.n_resamples, "seed": options.seed, "confidence": options.confidence},
        "mismatches": problems,
        "suites": {},
        "comparisons": [],
        "published": {label: published(label) for label in names if published(label) is not None},
    }
    if any(len(group) > 1 for group in labels.groups):
        report["bootstrap"]["seeds"] = "two-level: training seeds and questions resampled"
    tests: list[tuple[dict[str, Any], float]] = []
    for suite, plan in plans.items():
        entry: dict[str, Any] = {
            "mode": mode_of(suite),
            "table": _table(labels, plan.table, options),
            "breakdown": _breakdown(labels, plan, options),
        }
        if options.exclude is not None:
            entry["clean"] = _clean(labels, plan, options.exclude, options)
        report["suites"][suite] = entry
        for a, b in _pairs(names, options):
            compared = _comparison(plan.table["em"], names.index(a), names.index(b), options)
            comparison = {"suite": suite, "a": a, "b": b, **compared}
            report["comparisons"].append(comparison)
            tests += [(test, test["p_value"]) for test in comparison["mcnemar"].values()]
    if judge_figures is not None:
        report["judge"], judge_tests = _judge_report(runs, labels, judge_figures, options)
        tests += judge_tests
    for (test, _), adjusted in zip(tests, holm([p for _, p in tests]), strict=True):
        test["p_holm"] = adjusted
    report["tests_corrected"] = len(tests)
    if options.exclude is not None:
        report["exclude"] = {"file": str(options.exclude.path), "entries": options.exclude.entries}
    if options.human is not None:
        report["human"] = human_section(
            options.human, runs, names, options.n_resamples, options.seed, options.confidence
        )
    return report
