"""``build_report`` on runs built in memory: what is refused, what clusters change, the Holm family."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lm_eval_medinj.study.report import ReportOptions, build_report, check_comparable
from lm_eval_medinj.study.runs import Item, Run, StudyError

SETTINGS = {"chat_template_sha": "abc", "system_instruction_sha": None, "fewshot_as_multiturn": True}


def _items(correct: list[int], clustered: bool = False, fmt: str = "mcqu") -> list[Item]:
    return [
        Item(
            task=f"medinj_{fmt}_all_gen",
            id=f"q{i}",
            format=fmt,
            cluster=f"case{i // 5}" if clustered else f"q{i}",
            provenance="native" if i % 2 else "translated",
            origin="MedQA",
            em=float(c),
            hamming=float(c) if fmt == "mcq" else None,
            protocol="paper",
            prompt_source="conversation",
        )  # fmt: skip
        for i, c in enumerate(correct)
    ]


def _run(label: str, correct: list[int], clustered: bool = False, **settings: object) -> Run:
    items = _items(correct, clustered) + _items(correct[::-1], clustered, "mcq")
    run_settings = {**SETTINGS, "n_shot": {"medinj_mcqu_all_gen": 0, "medinj_mcq_all_gen": 0}, **settings}
    return Run(label, Path(label), {"medinj_mcq_gen": items}, settings=run_settings)


BASE = [1, 0] * 10
BETTER = [1] * 16 + [0] * 4


def test_a_template_applied_to_one_run_only_or_other_few_shot_is_refused_naming_model_and_setting() -> None:
    options = ReportOptions(baseline="base", n_resamples=100)
    # Two model families, each in its own template: compared, each template's hash listed.
    families = [_run("base", BASE, chat_template_applied=True), _run("NAT", BETTER, chat_template_sha="def")]
    families[1].settings["chat_template_applied"] = True
    assert check_comparable(families, options) == (["medinj_mcq_gen"], [])
    report = build_report(families, options)
    assert [report["models"][m]["runs"][0]["chat_template_sha"] for m in ("base", "NAT")] == ["abc", "def"]
    template = [_run("base", BASE, chat_template_applied=True), _run("NAT", BETTER, chat_template_applied=False)]
    with pytest.raises(StudyError, match=r"different chat_template_applied: \{'base': True, 'NAT': False\}"):
        check_comparable(template, options)
    shots = [_run("base", BASE), _run("NAT", BETTER, n_shot={"medinj_mcqu_all_gen": 5, "medinj_mcq_all_gen": 5})]
    with pytest.raises(StudyError, match="different n_shot"):
        check_comparable(shots, options)
    _, problems = check_comparable(shots, ReportOptions(baseline="base", allow_mismatch=True))
    assert problems and "n_shot" in problems[0]


def test_unknown_baseline_and_pairs_are_refused() -> None:
    runs = [_run("base", BASE), _run("NAT", BETTER)]
    with pytest.raises(StudyError, match="--baseline 'ALL' is not one of the models: base, NAT"):
        check_comparable(runs, ReportOptions(baseline="ALL"))
    with pytest.raises(StudyError, match="--compare NAT:SYN"):
        check_comparable(runs, ReportOptions(baseline="base", pairs=(("NAT", "SYN"),)))


def test_clusters_widen_the_table1_interval() -> None:
    options = ReportOptions(baseline="base", n_resamples=2000)
    wide, narrow = (
        build_report([_run("base", [1] * 10 + [0] * 10, clustered), _run("NAT", BETTER, clustered)], options)
        for clustered in (True, False)
    )
    width = [r["suites"]["medinj_mcq_gen"]["table"]["base"]["em_mcqu"] for r in (wide, narrow)]
    assert [cell["estimate"] for cell in width] == [50.0, 50.0]
    assert width[0]["high"] - width[0]["low"] > 1.5 * (width[1]["high"] - width[1]["low"])


def test_every_mcnemar_test_is_in_one_holm_family() -> None:
    runs = [_run("base", BASE), _run("NAT", BETTER), _run("ALL", BETTER)]
    report = build_report(runs, ReportOptions(baseline="base", pairs=(("NAT", "ALL"),), n_resamples=200))
    tests = [test for comparison in report["comparisons"] for test in comparison["mcnemar"].values()]
    assert report["tests_corrected"] == len(tests) == 3 * 2
    assert all(test["p_value"] <= test["p_holm"] <= 1 for test in tests)
    assert min(t["p_holm"] for t in tests) == pytest.approx(min(t["p_value"] for t in tests) * len(tests))
    assert report["published"] == {"base": (34.53, 0.36), "NAT": (40.59, 0.24), "ALL": (40.97, 0.25)}


def test_a_question_asked_in_another_format_is_refused_then_left_out_when_allowed() -> None:
    base, nat = _run("base", BASE), _run("NAT", BETTER)
    for run in (base, nat):
        run.suites["medinj_mcq_gen"] = [
            replace(item, uid=item.id + item.format) for item in run.suites["medinj_mcq_gen"]
        ]
    moved = nat.suites["medinj_mcq_gen"]
    moved[0] = replace(moved[0], format="mcq", hamming=moved[0].em)  # uid q0mcqu, now asked as MCQ
    options = ReportOptions(baseline="base", n_resamples=100)
    with pytest.raises(
        StudyError, match=r"model NAT asks 1 question\(s\) in another format than base \(\['q0mcqu'\]\)"
    ):
        check_comparable([base, nat], options)
    report = build_report([base, nat], replace(options, allow_mismatch=True))
    cells = report["suites"]["medinj_mcq_gen"]["table"]["NAT"]
    assert cells["em_mcqu"]["n"] == 19 and cells["em_mcq"]["n"] == 20


def test_one_folder_given_twice_under_two_spellings_is_refused() -> None:
    base, again = _run("base", BASE), _run("NAT", BETTER)
    again.folder = Path("nested/../base")
    with pytest.raises(StudyError, match=r"a run folder is given twice: base = nested/\.\./base$"):
        check_comparable([base, again], ReportOptions(baseline="base"))
