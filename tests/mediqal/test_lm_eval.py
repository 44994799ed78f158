"""lm-eval runs of every MediQAl task on a tiny model, offline, and the breakdown by question type."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.cli import main as medinj
from lm_eval_medinj.mcq.metrics import exact_match, hamming_score
from lm_eval_medinj.mcq.task import doc_to_choice
from lm_eval_medinj.oeq.task import METRICS
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol.paper import parse_authors_answer
from lm_eval_medinj.protocol.strict import parse_answer
from lm_eval_medinj.study.breakdown import breakdown_folder
from tests.test_lm_eval_run import BIN, model_args, results_and_samples, run

pytestmark = pytest.mark.slow
MCQ_TASKS = ("medinj_mediqal_mcqu", "medinj_mediqal_mcqm")


def _metadata(mediqal_dir: Path, tiny_encoder_dir: Path) -> str:
    return json.dumps({
        "data_dir": str(mediqal_dir), "bertscore_model": str(tiny_encoder_dir),
        "bertscore_layer": 2, "bertscore_rescale": False,
    })  # fmt: skip


def _predicted(task: str, sample: dict[str, Any]) -> frozenset[str] | None:
    doc = sample["doc"]
    if task.endswith(("_gen", "_greedy")):  # the authors' parse, the default protocol
        return parse_authors_answer(sample["filtered_resps"][0], doc["option_letters"], doc["task"] == "mcq")
    loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
    return parse_answer(doc_to_choice(doc)[loglikelihoods.index(max(loglikelihoods))], doc["option_letters"])


def _check_mcq(results: dict[str, Any], samples: dict[str, list[dict[str, Any]]], mode: str) -> None:
    for task in (f"{name}{mode}" for name in MCQ_TASKS):
        for sample in samples[task]:
            doc, predicted = sample["doc"], _predicted(task, sample)
            assert sample["em"] == exact_match(doc["gold"], predicted)
            if doc["task"] == "mcq":
                assert sample["hamming"] == pytest.approx(hamming_score(doc["gold"], predicted))
        assert results[task]["em,none"] == pytest.approx(sum(s["em"] for s in samples[task]) / len(samples[task]))
    mcqu, mcqm = (results[f"{name}{mode}"] for name in MCQ_TASKS)
    assert "hamming,none" not in mcqu and "hamming,none" in mcqm
    group = results[f"medinj_mediqal{mode}"]
    assert group["em,none"] == pytest.approx((mcqu["em,none"] + mcqm["em,none"]) / 2)
    assert group["hamming,none"] == pytest.approx(mcqm["hamming,none"])


def test_lm_eval_runs_the_mediqal_group_offline(
    tmp_path: Path, tiny_model_dir: Path, mediqal_dir: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    completed = run([
        str(BIN / "lm_eval"), "--include_path", str(tasks_path()), "--tasks", "medinj_mediqal",
        "--model", "hf", "--model_args", model_args(tiny_model_dir),
        "--metadata", _metadata(mediqal_dir, tiny_encoder_dir),
        "--gen_kwargs", "max_gen_toks=16", "--log_samples", "--output_path", str(output),
    ], tmp_path)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results, samples = results_and_samples(output)
    _check_mcq(results, samples, "")
    assert {f"{name},none" for name in METRICS} <= set(results["medinj_mediqal_oeq"])
    assert len(samples["medinj_mediqal_oeq"]) == 3

    # By question type: each group's mean is the mean of its own samples; clinical cases are clusters.
    tables = breakdown_folder(output, ["question_type", "medical_subject"])
    by_type = {group.value: group for group in tables["medinj_mediqal_mcqu"]["question_type"]}
    assert (by_type["Reasoning"].questions, by_type["Reasoning"].clusters) == (3, 2)
    assert (by_type["Understanding"].questions, by_type["Understanding"].clusters) == (2, 2)
    for value, group in by_type.items():
        ems = [s["em"] for s in samples["medinj_mediqal_mcqu"] if s["doc"]["question_type"] == value]
        assert group.means["em"] == pytest.approx(sum(ems) / len(ems))
    subjects = {group.value for group in tables["medinj_mediqal_mcqm"]["medical_subject"]}
    assert subjects == {"Cardiologie", "Pédiatrie", "Pharmacologie"}
    assert "rougeL" in tables["medinj_mediqal_oeq"]["question_type"][0].means

    medinj(["breakdown", str(output), "--by", "question_type", "--json", str(tmp_path / "by_type.json")])
    printed = capsys.readouterr().out
    assert "### medinj_mediqal_mcqm by question_type" in printed and "| Reasoning | 3 | 2 |" in printed
    written = json.loads((tmp_path / "by_type.json").read_text(encoding="utf-8"))
    assert written["medinj_mediqal_mcqu"]["question_type"][0]["value"] == "Reasoning"


def test_medinj_eval_runs_the_generation_families(
    tmp_path: Path, tiny_model_dir: Path, mediqal_dir: Path, tiny_encoder_dir: Path
) -> None:
    output = tmp_path / "out"
    completed = run([
        str(BIN / "medinj"), "eval", "--tasks", "medinj_mediqal_gen,medinj_mediqal_greedy",
        "--model", "medinj-hf", "--model_args", model_args(tiny_model_dir),
        "--metadata", _metadata(mediqal_dir, tiny_encoder_dir),
        "--apply_chat_template", "--log_samples", "--output_path", str(output),
    ], tmp_path)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results, samples = results_and_samples(output)
    for mode in ("_gen", "_greedy"):
        _check_mcq(results, samples, mode)
    # Under the authors' mask, a _gen answer holds only option letters and separators.
    for task in MCQ_TASKS:
        for sample in samples[f"{task}_gen"]:
            assert set(sample["resps"][0][0]) <= {*sample["doc"]["option_letters"], ",", " ", "\n"}


def test_breakdown_of_a_folder_without_samples_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no samples_.*--log_samples"):
        medinj(["breakdown", str(tmp_path)])


def test_the_real_shape_through_lm_eval_and_the_report(
    tmp_path: Path, tiny_model_dir: Path, mediqal_real_dir: Path, tiny_encoder_dir: Path
) -> None:
    """Ids "1", "2", "3" in mcqu, mcqm and oeq: every sample keeps its own uid, and the report its questions."""
    output = tmp_path / "out"
    completed = run([
        str(BIN / "lm_eval"), "--tasks", "medinj_mediqal", "--model", "hf", "--model_args", model_args(tiny_model_dir),
        "--metadata", _metadata(mediqal_real_dir, tiny_encoder_dir), "--gen_kwargs", "max_gen_toks=8",
        "--log_samples", "--output_path", str(output),
    ], tmp_path)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results, samples = results_and_samples(output)
    _check_mcq(results, samples, "")
    uids = [s["doc"]["uid"] for task in (*MCQ_TASKS, "medinj_mediqal_oeq") for s in samples[task]]
    assert len(uids) == len(set(uids)) == 8
    report, again = tmp_path / "report", tmp_path / "out-again"
    shutil.copytree(output, again)  # a second model, as far as the report can tell
    medinj(["report", "--model", f"a={output}", "--model", f"b={again}", "--baseline", "a", "--bootstrap", "100",
            "--out", str(report)])  # fmt: skip
    suites = json.loads((report / "report.json").read_text(encoding="utf-8"))["suites"]
    assert {task: suites[task]["table"]["a"]["em"]["n"] for task in MCQ_TASKS} == dict.fromkeys(MCQ_TASKS, 3)
