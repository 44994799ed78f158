"""The report's figures against fixed expectations and independent computations: the golden study
(figures unchanged since the draws are shared and the samples streamed), seeds, clean subsets."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lm_eval_medinj.study.exclude import read_flagged
from lm_eval_medinj.study.report import ReportOptions, build_report, check_comparable
from lm_eval_medinj.study.runs import Item, Run, StudyError
from lm_eval_medinj.study.stats import Stratum, bootstrap_many, point_estimate
from tests.study.golden import GOLDEN, golden_report


def _numbers(node: Any, path: str = "") -> dict[str, float]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _numbers(value, f"{path}/{key}").items()}
    if isinstance(node, list):
        return {k: v for index, value in enumerate(node) for k, v in _numbers(value, f"{path}/{index}").items()}
    if isinstance(node, int | float) and not isinstance(node, bool):
        return {path: float(node)}
    return {}


# Figures from fractional scores (Hamming, judge probabilities): their resampled sums are rounded by
# the machine's BLAS kernel, in the old code as now, so they may differ in the last digit elsewhere.
FRACTIONAL = ("hamming", "p_equivalent", "p_calibrated")


def test_every_figure_of_the_golden_study_is_unchanged() -> None:
    expected = _numbers(json.loads(GOLDEN.read_text(encoding="utf-8")))
    report = golden_report()
    actual = _numbers({key: report[key] for key in ("suites", "comparisons", "judge", "tests_corrected")})
    assert len(expected) > 1000
    missing = sorted(set(expected) - set(actual))
    assert not missing, missing[:5]
    exact = [path for path in expected if not any(name in path for name in FRACTIONAL)]
    assert len(exact) > 700
    changed = {path: (expected[path], actual[path]) for path in exact if actual[path] != expected[path]}
    assert not changed, list(changed.items())[:5]
    for path in set(expected) - set(exact):
        assert actual[path] == pytest.approx(expected[path], rel=1e-12, abs=1e-12), path
    assert not any(math.isnan(value) for value in actual.values())


# --- synthetic runs ------------------------------------------------------------------------


def _items(
    em: list[float], fmt: str, *, flagged_share: float = 0.0, revision: str = "", uid: bool = False
) -> list[Item]:
    task = f"medinj_{fmt}_all_gen"
    return [
        Item(
            task=task,
            id=f"q{i}",
            format=fmt,
            cluster=f"case{i // 4}" if fmt == "mcq" else f"q{i}",
            provenance=("native", "translated")[i % 2],
            origin="MedQA",
            em=float(value),
            hamming=float(value) if fmt == "mcq" else None,
            protocol="paper",
            prompt_source="conversation",
            uid=f"medinjection/{fmt}/q{i}" if uid else "",
            data_revision=revision,
        )
        for i, value in enumerate(em)
    ]


def _run(label: str, folder: str, mcqu: list[float], mcq: list[float], **item_options: Any) -> Run:
    items = _items(mcqu, "mcqu", **item_options) + _items(mcq, "mcq", **item_options)
    settings = {
        "chat_template_applied": True,
        "chat_template_sha": "abc",
        "system_instruction_sha": None,
        "fewshot_as_multiturn": True,
        "n_shot": {"medinj_mcqu_all_gen": 0, "medinj_mcq_all_gen": 0},
    }
    return Run(label, Path(folder), {"medinj_mcq_gen": items}, settings=settings)


def _correct(n: int, accuracy: float, seed: int) -> list[float]:
    return (np.random.default_rng(seed).random(n) < accuracy).astype(float).tolist()


def _question_draws(strata_sizes: list[list[int]], n_resamples: int, seed: int) -> list[list[list[int]]]:
    """The documented stream: per stratum in order, one rng.integers(0, k, size=k) per resample."""
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, k, size=k).tolist() for _ in range(n_resamples)] for k in strata_sizes]


# --- shared draws ---------------------------------------------------------------------------


def test_figures_drawn_together_equal_figures_drawn_alone() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((60, 3)).round(1)  # fractional: the matrix-vector path
    correct = (rng.random((60, 3)) < 0.5).astype(float)  # 0/1: the exact matrix path
    clusters = np.arange(60) // 3
    mcqu, mcq = Stratum(correct[:40], clusters[:40]), Stratum(values, clusters)
    subset = Stratum(correct[:40], clusters[:40], weights=(np.arange(40) % 3 > 0).astype(float))
    figures = [[mcqu, mcq], [mcqu], [mcq], [subset, mcq], [Stratum(correct, clusters)], [mcqu, mcq]]
    together = bootstrap_many(figures, n_resamples=300, seed=9)
    for figure, draws in zip(figures, together, strict=True):
        assert np.array_equal(draws, bootstrap_many([figure], n_resamples=300, seed=9)[0])


def test_a_weighted_stratum_is_the_mean_of_its_kept_items_on_the_draws_of_all() -> None:
    rng = np.random.default_rng(1)
    values = (rng.random((30, 2)) < 0.6).astype(float)
    labels = [f"c{i // 2}" for i in range(30)]
    kept = [i % 5 != 0 for i in range(30)]
    stratum = Stratum(values, np.array(labels), weights=np.array(kept, dtype=float))
    draws = bootstrap_many([[stratum]], n_resamples=200, seed=4)[0]
    members: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    order = list(members.values())  # clusters numbered by first appearance
    (picks,) = _question_draws([len(order)], 200, 4)
    for r, drawn in enumerate(picks):
        items = [i for c in drawn for i in order[c] if kept[i]]
        expected = [sum(values[i, col] for i in items) / len(items) for col in range(2)]
        assert draws[r] == pytest.approx(expected, rel=1e-12)
    assert point_estimate([stratum]) == pytest.approx(values[np.array(kept)].mean(axis=0))


# --- seeds ----------------------------------------------------------------------------------

N_MCQU, N_MCQ = 24, 20
SEED_RUNS = {"base": [0.4], "NAT": [0.3, 0.6, 0.8], "TRAD": [0.5, 0.55]}


def _seed_runs(accuracies: dict[str, list[float]] = SEED_RUNS) -> list[Run]:
    runs = []
    for label, levels in accuracies.items():
        for index, level in enumerate(levels):
            seed = 10 * len(runs)
            runs.append(
                _run(label, f"out/{label}_s{index}", _correct(N_MCQU, level, seed), _correct(N_MCQ, level, seed + 1))
            )
    return runs


def _reference_seed_draws(runs: list[Run], n_resamples: int, seed: int) -> dict[str, list[float]]:
    """The two-level bootstrap of EM, written from its specification with plain loops."""
    per_format = {}
    for fmt in ("mcqu", "mcq"):
        rows = [
            sorted((i for i in run.suites["medinj_mcq_gen"] if i.format == fmt), key=lambda i: i.key) for run in runs
        ]
        order: dict[str, list[int]] = {}
        for position, item in enumerate(rows[0]):
            order.setdefault(item.cluster, []).append(position)
        per_format[fmt] = ([[item.em for item in row] for row in rows], list(order.values()))
    picks = _question_draws([len(per_format[fmt][1]) for fmt in ("mcqu", "mcq")], n_resamples, seed)
    labels = list(dict.fromkeys(run.label for run in runs))
    groups = {label: [i for i, run in enumerate(runs) if run.label == label] for label in labels}
    seed_rng = np.random.default_rng([seed, 1])
    seed_picks = {label: seed_rng.integers(0, len(g), size=(n_resamples, len(g))) for label, g in groups.items()
                  if len(g) > 1}  # fmt: skip
    result: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(n_resamples):
        for label, members in groups.items():
            chosen = [members[int(p)] for p in seed_picks[label][r]] if label in seed_picks else members
            scores = []
            for run in chosen:
                means = []
                for f, fmt in enumerate(("mcqu", "mcq")):
                    values, clusters = per_format[fmt]
                    items = [i for c in picks[f][r] for i in clusters[c]]
                    means.append(sum(values[run][i] for i in items) / len(items))
                scores.append(sum(means) / 2)
            result[label].append(sum(scores) / len(scores))
    return result


def test_seed_aware_intervals_equal_a_two_level_bootstrap_written_from_the_spec() -> None:
    runs = _seed_runs()
    report = build_report(runs, ReportOptions(baseline="base", pairs=(("NAT", "TRAD"),), n_resamples=300, seed=5))
    reference = _reference_seed_draws(runs, 300, 5)
    table = report["suites"]["medinj_mcq_gen"]["table"]
    for label, draws in reference.items():
        cell = table[label]["em"]
        assert [cell["low"], cell["high"]] == pytest.approx(100 * np.quantile(draws, [0.025, 0.975]), rel=1e-12)
    for comparison in report["comparisons"]:
        diffs = np.array(reference[comparison["a"]]) - np.array(reference[comparison["b"]])
        interval = comparison["difference"]
        assert [interval["low"], interval["high"]] == pytest.approx(100 * np.quantile(diffs, [0.025, 0.975]), rel=1e-12)
    # The figure is the mean over seeds; sd the between-seed standard deviation of the per-seed figures.
    nat = [r for r in runs if r.label == "NAT"]
    scores = [
        50 * sum(np.mean([i.em for i in r.suites["medinj_mcq_gen"] if i.format == fmt]) for fmt in ("mcqu", "mcq"))
        for r in nat
    ]
    assert table["NAT"]["em"]["estimate"] == pytest.approx(np.mean(scores), rel=1e-12)
    assert table["NAT"]["em"]["per_seed"] == pytest.approx(scores, rel=1e-12)
    assert table["NAT"]["em"]["seed_sd"] == pytest.approx(np.std(scores, ddof=1), rel=1e-12)
    assert table["NAT"]["em"]["seeds"] == 3 and "seeds" not in table["base"]["em"]


def test_seeds_that_disagree_widen_the_interval_beyond_question_sampling() -> None:
    options = ReportOptions(baseline="base", n_resamples=2000, seed=0)
    apart = {"base": [0.4], "NAT": [0.2, 0.5, 0.8]}
    cell = build_report(_seed_runs(apart), options)["suites"]["medinj_mcq_gen"]["table"]["NAT"]["em"]
    seed_aware, questions_only = (
        cell["high"] - cell["low"],
        cell["questions_only"]["high"] - cell["questions_only"]["low"],
    )
    assert seed_aware > 1.3 * questions_only
    # Seeds that answer alike: resampling them changes nothing.
    same = [_run("base", "b", _correct(N_MCQU, 0.4, 1), _correct(N_MCQ, 0.4, 2))]
    same += [_run("NAT", f"n{s}", _correct(N_MCQU, 0.6, 3), _correct(N_MCQ, 0.6, 4)) for s in range(3)]
    cell = build_report(same, options)["suites"]["medinj_mcq_gen"]["table"]["NAT"]["em"]
    assert (cell["low"], cell["high"]) == (cell["questions_only"]["low"], cell["questions_only"]["high"])
    assert cell["seed_sd"] == 0


def test_mcnemar_is_not_run_for_a_model_with_several_seeds() -> None:
    report = build_report(_seed_runs(), ReportOptions(baseline="base", n_resamples=200))
    by_pair = {(c["a"], c["b"]): c for c in report["comparisons"]}
    assert by_pair["NAT", "base"]["mcnemar"] == {} and "McNemar" in by_pair["NAT", "base"]["mcnemar_note"]
    assert report["tests_corrected"] == 0
    single = build_report(_seed_runs({"base": [0.4], "NAT": [0.6]}), ReportOptions(baseline="base", n_resamples=200))
    assert set(single["comparisons"][0]["mcnemar"]) == {"mcqu", "mcq"} and single["tests_corrected"] == 2


def test_a_seed_on_other_questions_is_refused_naming_its_folder() -> None:
    runs = _seed_runs({"base": [0.4], "NAT": [0.3, 0.6]})
    runs[2].suites["medinj_mcq_gen"] = runs[2].suites["medinj_mcq_gen"][1:]
    with pytest.raises(StudyError, match=r"model NAT \(out/NAT_s1\) does not cover the same questions"):
        check_comparable(runs, ReportOptions(baseline="base"))
    with pytest.raises(StudyError, match="a run folder is given twice: out/NAT_s0"):
        check_comparable([*runs[:2], runs[1]], ReportOptions(baseline="base"))


# --- clean subset (--exclude) ---------------------------------------------------------------


def _overlap(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "overlap.json"
    path.write_text(json.dumps({"settings": {"ngram": 13}, "flagged": entries}), encoding="utf-8")
    return path


def _entry(task: str, id: str, uid: str | None = None) -> dict[str, Any]:
    entry = {"task": task, "id": id, "matches": [{"id": "train-1", "kind": "exact", "origin": "MedQA"}]}
    return entry if uid is None else {**entry, "uid": uid}


def test_clean_subset_and_full_minus_clean_equal_a_recomputation(tmp_path: Path) -> None:
    flagged_ids = {f"q{i}" for i in range(0, N_MCQU, 3)}
    # NAT answers every flagged question right (as a model that saw them in training would).
    runs = _seed_runs({"base": [0.4], "NAT": [0.4]})
    nat = runs[1].suites["medinj_mcq_gen"]
    runs[1].suites["medinj_mcq_gen"] = [replace(i, em=1.0) if i.id in flagged_ids else i for i in nat]
    entries = [_entry("medinj_mcqu_all", i) for i in flagged_ids]  # the choice task's name: same questions
    entries.append(_entry("medinj_mcq_all_gen", "q1"))
    entries.append(_entry("medinj_oeq_native", "q5"))  # audited, not in these runs
    flagged = read_flagged(_overlap(tmp_path, entries))
    report = build_report(runs, ReportOptions(baseline="base", n_resamples=500, seed=1, exclude=flagged))
    clean = report["suites"]["medinj_mcq_gen"]["clean"]
    assert (clean["flagged"], clean["clean"]) == (len(flagged_ids) + 1, N_MCQU + N_MCQ - len(flagged_ids) - 1)
    for run in runs:
        items = run.suites["medinj_mcq_gen"]
        kept = {fmt: [i.em for i in items if i.format == fmt and i.id not in (flagged_ids if fmt == "mcqu" else {"q1"})]
                for fmt in ("mcqu", "mcq")}  # fmt: skip
        full = {fmt: [i.em for i in items if i.format == fmt] for fmt in ("mcqu", "mcq")}
        clean_em = 50 * (np.mean(kept["mcqu"]) + np.mean(kept["mcq"]))
        full_em = 50 * (np.mean(full["mcqu"]) + np.mean(full["mcq"]))
        cell = clean["table"][run.label]["em"]
        assert cell["estimate"] == pytest.approx(clean_em) and cell["n"] == clean["clean"]
        assert clean["table"][run.label]["em_mcqu"]["estimate"] == pytest.approx(100 * np.mean(kept["mcqu"]))
        gap = clean["full_minus_clean"][run.label]["em"]
        assert gap["estimate"] == pytest.approx(full_em - clean_em)
        assert gap["low"] <= gap["estimate"] <= gap["high"]
    assert clean["full_minus_clean"]["NAT"]["em"]["low"] > 0  # the signature of contamination


def test_full_minus_clean_is_paired_on_the_same_resamples(tmp_path: Path) -> None:
    """On the draws of all questions, full minus clean: against resampling plain Python lists."""
    runs = _seed_runs({"base": [0.5]})
    flagged = read_flagged(_overlap(tmp_path, [_entry("medinj_mcqu_all_gen", f"q{i}") for i in range(6)]))
    options = ReportOptions(baseline="base", n_resamples=300, seed=2, exclude=flagged)
    gap = build_report(runs, options)["suites"]["medinj_mcq_gen"]["clean"]["full_minus_clean"]["base"]["em_mcqu"]
    items = sorted((i for i in runs[0].suites["medinj_mcq_gen"] if i.format == "mcqu"), key=lambda i: i.key)
    (picks,) = _question_draws([len(items)], 300, 2)
    diffs = []
    for drawn in picks:
        chosen = [items[c] for c in drawn]
        clean = [i.em for i in chosen if i not in flagged]
        diffs.append(100 * (np.mean([i.em for i in chosen]) - np.mean(clean)))
    assert [gap["low"], gap["high"]] == pytest.approx(np.quantile(diffs, [0.025, 0.975]), rel=1e-9)


def test_flagged_items_match_by_uid_else_task_and_id(tmp_path: Path) -> None:
    with_uid = _items([1.0, 0.0], "mcqu", uid=True)  # uids medinjection/mcqu/q0, .../q1
    without = _items([1.0, 0.0], "mcqu")
    flagged = read_flagged(
        _overlap(tmp_path, [_entry("medinj_mcqu_all", "q0", uid="medinjection/mcqu/q0"), _entry("other_task", "q1")])
    )
    assert [item in flagged for item in with_uid] == [True, False]  # q1's entry names another task
    assert [item in flagged for item in without] == [True, False]  # no uid on the item: task and id
    mediqal = read_flagged(_overlap(tmp_path, [_entry("medinj_mcqu_all", "q1", uid="mediqal/mcqm/q1")]))
    assert [item in mediqal for item in with_uid] == [False, False]  # same id, another configuration


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", r"overlap.json:1: invalid JSON"),
        ("[]", r"overlap.json: expected a JSON object, got list"),
        ('{"flagged": [{"id": "q1", "matches": [{"id": 1, "kind": "exact"}]}]}', r"flagged\[0\]\.task: Field required"),
        (
            '{"flagged": [{"task": "t", "id": "q1", "matches": []}]}',
            r"flagged\[0\]\.matches: List should have at least",
        ),
        ('{"flagged": [{"task": "t", "id": "q", "matches": [{"id": 1, "kind": "fuzzy"}]}]}', r"matches\[0\]\.kind: "),
        ('{"flagged": []}', "flagged is empty"),
    ],
)
def test_a_malformed_overlap_file_is_one_line_naming_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "overlap.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StudyError, match=message) as raised:
        read_flagged(path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def test_an_overlap_file_naming_no_question_of_the_runs_is_refused(tmp_path: Path) -> None:
    flagged = read_flagged(_overlap(tmp_path, [_entry("medinj_oeq_native", "q1")]))
    with pytest.raises(StudyError, match="none of its 1 flagged questions is a question of these runs"):
        build_report(_seed_runs({"base": [0.5]}), ReportOptions(baseline="base", n_resamples=10, exclude=flagged))


# --- data revisions, uid keys ------------------------------------------------------------------


def test_runs_on_other_data_revisions_are_refused_naming_both() -> None:
    a = _run("base", "a", [1.0, 0.0], [1.0, 0.0], revision="3f2a91c")
    b = _run("NAT", "b", [0.0, 1.0], [1.0, 1.0], revision="77be0d4")
    message = r"different data revisions .*: base read 3f2a91c; NAT read 77be0d4"
    with pytest.raises(StudyError, match=message):
        check_comparable([a, b], ReportOptions(baseline="base"))
    unknown = _run("NAT", "b", [0.0, 1.0], [1.0, 1.0])  # an old run: the revision it read is unknown
    with pytest.raises(StudyError, match="base read 3f2a91c; NAT read unknown"):
        check_comparable([a, unknown], ReportOptions(baseline="base"))
    _, problems = check_comparable([a, b], ReportOptions(baseline="base", allow_mismatch=True))
    assert len(problems) == 1 and "77be0d4" in problems[0]
    old = [_run("base", "a", [1.0, 0.0], [1.0, 0.0]), unknown]
    assert check_comparable(old, ReportOptions(baseline="base"))[1] == []


def test_questions_are_joined_by_uid() -> None:
    base = _run("base", "a", [1.0, 0.0, 1.0], [0.0, 1.0], uid=True)
    nat = _run("NAT", "b", [1.0, 1.0, 1.0], [1.0, 1.0], uid=True)
    # Another task name, the same questions (uids): joined.
    nat.suites["medinj_mcq_gen"] = [replace(i, task=i.task + "_v2") for i in nat.suites["medinj_mcq_gen"]]
    report = build_report([base, nat], ReportOptions(baseline="base", n_resamples=50))
    assert report["suites"]["medinj_mcq_gen"]["table"]["NAT"]["em"]["n"] == 5
