"""The whole study at toy scale, with the real commands: train two mixtures, evaluate the base and
both adapters (``_gen`` and choice scoring on ``medinj-hf``, open answers), judge the open answers,
and ``medinj report``; the report's numbers are recomputed here from the logged samples."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from lm_eval_medinj.study.stats import mcnemar_exact
from tests.oeq.models import build_tiny_encoder
from tests.training.fixtures import write_pools

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODELS = ("base", "NAT", "TRAD")
TEST_SIZES = {"native": {"mcq": 6, "mcqu": 6, "oeq": 3}, "translated": {"mcqu": 6}}
SUITES = ("medinj_mcq", "medinj_mcq_gen")


def _run(command: list[str], cwd: Path) -> None:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, f"{command[:3]}...\n{completed.stderr[-3000:]}"


def _train(model: Path, pools: Path, output_dir: Path, *mixtures: str) -> list[str]:
    """train/sft.py for a few steps on CPU."""
    return [
        sys.executable, str(REPO / "train" / "sft.py"), "--mixtures", *mixtures,
        "--settings", str(REPO / "train" / "configs" / "paper.yaml"),
        "--model_name_or_path", str(model), "--data_dir", str(pools), "--output_dir", str(output_dir),
        "--total", "20", "--max_steps", "6", "--per_device_train_batch_size", "2",
        "--gradient_accumulation_steps", "1", "--max_length", "256", "--learning_rate", "5e-2",
        "--use_cpu", "true", "--bf16", "false", "--activation_checkpointing", "false", "--save_steps", "6",
        "--report_to", "none", "--dataloader_num_workers", "0",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def study(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runs the pipeline once; yields its folder (pools/, runs/, out/<model>/, report/)."""
    root = tmp_path_factory.mktemp("study")
    pools = write_pools(root / "pools", test_sizes=TEST_SIZES)
    encoder = build_tiny_encoder(root / "encoder")
    _run(_train(tiny_model_dir, pools, root / "runs", "NAT", "TRAD"), root)
    metadata = {
        "data_dir": str(pools),
        "bertscore_model": str(encoder),
        "bertscore_layer": 2,
        "bertscore_rescale": False,
    }
    for model in MODELS:
        peft = "" if model == "base" else f",peft={root / 'runs' / model / 'adapter'}"
        _run([
            str(BIN / "medinj"), "eval", "--tasks", "medinj_mcq,medinj_mcq_gen,medinj_oeq", "--model", "medinj-hf",
            "--model_args", f"pretrained={tiny_model_dir},dtype=float32{peft}", "--metadata", json.dumps(metadata),
            "--apply_chat_template", "--gen_kwargs", "max_gen_toks=24", "--log_samples",
            "--output_path", str(root / "out" / model),
        ], root)  # fmt: skip
    _run([
        sys.executable, str(REPO / "judge" / "score.py"), *(str(root / "out" / m) for m in MODELS),
        "--judge", f"hf:{tiny_model_dir}", "--cache", str(root / "judge.sqlite"), "--no-progress",
    ], root)  # fmt: skip
    _run([
        str(BIN / "medinj"), "report", *(f"--model={m}={root / 'out' / m}" for m in MODELS),
        "--baseline", "base", "--compare", "NAT:TRAD", "--bootstrap", "2000", "--out", str(root / "report"),
    ], root)  # fmt: skip
    yield root


def _samples(folder: Path, task: str) -> list[dict[str, Any]]:
    (path,) = [p for p in folder.rglob("samples_*.jsonl") if p.stem.removeprefix("samples_").rsplit("_", 1)[0] == task]
    return sorted((json.loads(line) for line in path.open(encoding="utf-8")), key=lambda s: s["doc"]["id"])


def _em(folder: Path, suite: str) -> dict[str, list[float]]:
    mode = suite.removeprefix("medinj_mcq")
    return {fmt: [s["em"] for s in _samples(folder, f"medinj_{fmt}_all{mode}")] for fmt in ("mcqu", "mcq")}


def test_every_section_and_file_is_written(study: Path) -> None:
    report = study / "report"
    text = (report / "report.md").read_text(encoding="utf-8")
    headings = (
        "## Table 1", "### medinj_mcq (choice)", "### medinj_mcq_gen (gen)", "### Judge (open answers)",
        "## The paper's published Table 1", "## Paired differences", "## Breakdown by provenance and origin",
        "### medinj_mcq_gen by provenance", "### medinj_mcq_gen by origin", "![forest.png](forest.png)",
    )  # fmt: skip
    for heading in headings:
        assert heading in text, heading
    for png in ("forest.png", "judge_vs_length.png"):
        assert imread(report / png).shape[2] in (3, 4)
    rows = (report / "table1.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "model,suite,mode,metric,estimate,low,high,n" and len(rows) > 20


def test_table1_equals_the_samples(study: Path) -> None:
    report = json.loads((study / "report" / "report.json").read_text(encoding="utf-8"))
    for suite in SUITES:
        for model in MODELS:
            em = _em(study / "out" / model, suite)
            cells = report["suites"][suite]["table"][model]
            assert cells["em_mcqu"]["estimate"] == pytest.approx(100 * np.mean(em["mcqu"]))
            assert cells["em_mcq"]["estimate"] == pytest.approx(100 * np.mean(em["mcq"]))
            assert cells["em"]["estimate"] == pytest.approx(50 * (np.mean(em["mcqu"]) + np.mean(em["mcq"])))
            assert cells["em"]["low"] <= cells["em"]["estimate"] <= cells["em"]["high"]
            assert cells["em"]["n"] == 18
            # lm-eval's own group score is the same unweighted mean
            (results,) = (study / "out" / model).rglob("results_*.json")
            group = json.loads(results.read_text(encoding="utf-8"))["results"][suite]["em,none"]
            assert cells["em"]["estimate"] == pytest.approx(100 * group)


def test_comparisons_equal_the_samples(study: Path) -> None:
    report = json.loads((study / "report" / "report.json").read_text(encoding="utf-8"))
    pairs = {(c["suite"], c["a"], c["b"]) for c in report["comparisons"]}
    assert pairs == {(s, a, b) for s in SUITES for a, b in (("NAT", "base"), ("TRAD", "base"), ("NAT", "TRAD"))}
    for comparison in report["comparisons"]:
        a, b = (_em(study / "out" / comparison[side], comparison["suite"]) for side in ("a", "b"))
        expected = 50 * (np.mean(a["mcqu"]) + np.mean(a["mcq"]) - np.mean(b["mcqu"]) - np.mean(b["mcq"]))
        assert comparison["difference"]["estimate"] == pytest.approx(expected)
        for fmt, test in comparison["mcnemar"].items():
            reference = mcnemar_exact(np.array(a[fmt]) >= 0.5, np.array(b[fmt]) >= 0.5)
            assert (test["only_a"], test["only_b"], test["p_value"]) == (
                reference.only_a,
                reference.only_b,
                pytest.approx(reference.p_value),
            )
            assert test["p_value"] <= test["p_holm"] <= 1
    assert report["tests_corrected"] == len(report["comparisons"]) * 2 + len(report["judge"]["comparisons"])


def test_judge_column_equals_the_judge_outputs(study: Path) -> None:
    report = json.loads((study / "report" / "report.json").read_text(encoding="utf-8"))
    for model in MODELS:
        (path,) = (study / "out" / model).rglob("judge_hf-*.jsonl")
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        assert len(rows) == 3
        cells = report["judge"]["table"][model]
        assert cells["verdict"]["estimate"] == pytest.approx(np.mean([r["verdict"] for r in rows]))
        assert cells["words"]["estimate"] == pytest.approx(np.mean([r["candidate_words"] for r in rows]))
    assert report["published"]["NAT"] == [40.59, 0.24]


def test_breakdown_covers_every_provenance(study: Path) -> None:
    report = json.loads((study / "report" / "report.json").read_text(encoding="utf-8"))
    by_provenance = report["suites"]["medinj_mcq_gen"]["breakdown"]["provenance"]
    assert set(by_provenance) == {"native", "translated"}
    native_mcqu = [
        s["em"] for s in _samples(study / "out" / "NAT", "medinj_mcqu_all_gen") if s["doc"]["provenance"] == "native"
    ]
    assert by_provenance["native"]["NAT"]["em_mcqu"]["estimate"] == pytest.approx(100 * np.mean(native_mcqu))
    assert "difference_from_baseline" in by_provenance["translated"]["TRAD"]


def _copy_run(study: Path, tmp_path: Path, edit: Any) -> Path:
    copy = tmp_path / "NAT-edited"
    shutil.copytree(study / "out" / "NAT", copy)
    (path,) = copy.rglob("samples_medinj_mcq_all_gen_*.jsonl")
    samples = [json.loads(line) for line in path.open(encoding="utf-8")]
    path.write_text("".join(json.dumps(s) + "\n" for s in edit(samples)), encoding="utf-8")
    return copy


def _report(study: Path, other: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "medinj"), "report", f"--model=base={study / 'out' / 'base'}", f"--model=NAT={other}",
               "--baseline", "base", "--bootstrap", "200", "--out", str(out), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_runs_on_other_questions_are_refused_naming_model_and_items(study: Path, tmp_path: Path) -> None:
    other = _copy_run(study, tmp_path, lambda samples: samples[1:])
    (source,) = (study / "out" / "NAT").rglob("samples_medinj_mcq_all_gen_*.jsonl")
    dropped = json.loads(source.open(encoding="utf-8").readline())
    refused = _report(study, other, tmp_path / "refused")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "model NAT does not cover the same questions" in refused.stderr and dropped["doc"]["id"] in refused.stderr
    allowed = _report(study, other, tmp_path / "allowed", "--allow-mismatch")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    text = (tmp_path / "allowed" / "report.md").read_text(encoding="utf-8")
    assert "Compared despite these mismatches" in text and "model NAT does not cover" in text


def test_runs_under_other_protocols_are_refused(study: Path, tmp_path: Path) -> None:
    def strict(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**s, "doc": {**s["doc"], "protocol": "strict"}} for s in samples]

    refused = _report(study, _copy_run(study, tmp_path, strict), tmp_path / "refused")
    assert refused.returncode != 0 and "medinj_mcq_gen: different protocol" in refused.stderr


# --- seeds, clean subset and model families, on real runs ------------------------------------

MCQ_SUITES = "medinj_mcq,medinj_mcq_gen"


def _evaluate(model_args: str, output: Path, root: Path, *extra: str) -> Path:
    _run([
        str(BIN / "medinj"), "eval", "--tasks", MCQ_SUITES, "--model", "medinj-hf", "--model_args", model_args,
        "--metadata", json.dumps({"data_dir": str(root / "pools")}), "--gen_kwargs", "max_gen_toks=24",
        "--log_samples", "--output_path", str(output), *extra,
    ], root)  # fmt: skip
    return output


@pytest.fixture(scope="module")
def second_seed(study: Path, tiny_model_dir: Path) -> Path:
    """NAT trained again with another seed (train/sft.py --seed 2) and evaluated on the MCQ suites."""
    _run([*_train(tiny_model_dir, study / "pools", study / "runs_seed2", "NAT"), "--seed", "2"], study)
    model_args = f"pretrained={tiny_model_dir},dtype=float32,peft={study / 'runs_seed2' / 'NAT' / 'adapter'}"
    return _evaluate(model_args, study / "out" / "NAT_seed2", study, "--apply_chat_template")


def _suite_em(folder: Path, suite: str, keep: Any = lambda doc: True) -> float:
    """EM of a suite from the samples: the mean over formats of the mean over the kept questions."""
    em = _em_by_doc(folder, suite)
    return 50 * sum(np.mean([e for doc, e in em[fmt] if keep(doc)]) for fmt in ("mcqu", "mcq"))


def _em_by_doc(folder: Path, suite: str) -> dict[str, list[tuple[dict[str, Any], float]]]:
    mode = suite.removeprefix("medinj_mcq")
    return {fmt: [(s["doc"], s["em"]) for s in _samples(folder, f"medinj_{fmt}_all{mode}")] for fmt in ("mcqu", "mcq")}


def test_seeds_and_clean_subset_equal_the_samples(study: Path, second_seed: Path, tmp_path: Path) -> None:
    out = study / "out"
    docs = _em_by_doc(out / "base", "medinj_mcq")
    # Flag two MCQU questions (named by the choice task, as an audit of the test set names them) and one MCQ.
    flagged = [("medinj_mcqu_all", doc["id"]) for doc, _ in docs["mcqu"][:2]] + [("medinj_mcq_all_gen",
               docs["mcq"][0][0]["id"])]  # fmt: skip
    overlap = tmp_path / "overlap.json"
    entries = [{"task": task, "id": id, "matches": [{"id": "train-7", "kind": "exact"}]} for task, id in flagged]
    overlap.write_text(json.dumps({"settings": {}, "flagged": entries}), encoding="utf-8")
    models = [f"--model=base={out / 'base'}", f"--model=NAT={out / 'NAT'}", f"--model=NAT={second_seed}",
              f"--model=TRAD={out / 'TRAD'}"]  # fmt: skip
    completed = subprocess.run(
        [str(BIN / "medinj"), "report", *models, "--baseline", "base", "--bootstrap", "500", "--exclude", str(overlap),
         "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    flagged_ids = {id for _, id in flagged}

    def clean(doc: dict[str, Any]) -> bool:
        return doc["id"] not in flagged_ids

    for suite in ("medinj_mcq", "medinj_mcq_gen"):
        table, section = report["suites"][suite]["table"], report["suites"][suite]["clean"]
        seeds = [_suite_em(folder, suite) for folder in (out / "NAT", second_seed)]
        assert table["NAT"]["em"]["estimate"] == pytest.approx(np.mean(seeds))
        assert table["NAT"]["em"]["per_seed"] == pytest.approx(seeds)
        assert table["NAT"]["em"]["seed_sd"] == pytest.approx(np.std(seeds, ddof=1))
        assert section["flagged"] == 3 and section["clean"] == 15
        for label, folders in (("base", [out / "base"]), ("NAT", [out / "NAT", second_seed]), ("TRAD", [out / "TRAD"])):
            full = np.mean([_suite_em(folder, suite) for folder in folders])
            clean_em = np.mean([_suite_em(folder, suite, clean) for folder in folders])
            assert section["table"][label]["em"]["estimate"] == pytest.approx(clean_em)
            assert section["full_minus_clean"][label]["em"]["estimate"] == pytest.approx(full - clean_em)
    by_pair = {(c["suite"], c["a"], c["b"]): c for c in report["comparisons"]}
    assert by_pair["medinj_mcq_gen", "NAT", "base"]["mcnemar"] == {}  # several seeds: no McNemar
    trad = by_pair["medinj_mcq_gen", "TRAD", "base"]["mcnemar"]["mcq"]
    a, b = (np.array([e for _, e in _em_by_doc(out / m, "medinj_mcq_gen")["mcq"]]) >= 0.5 for m in ("TRAD", "base"))
    assert (trad["only_a"], trad["only_b"]) == (mcnemar_exact(a, b).only_a, mcnemar_exact(a, b).only_b)


def test_two_chat_templates_are_compared_and_no_template_is_refused(
    study: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-family"
    shutil.copytree(tiny_model_dir, other)
    template = other / "chat_template.jinja"
    template.write_text("{#- another model family's template -#}\n" + template.read_text(encoding="utf-8"))
    family = _evaluate(f"pretrained={other},dtype=float32", tmp_path / "family", study, "--apply_chat_template")
    plain = _evaluate(f"pretrained={tiny_model_dir},dtype=float32", tmp_path / "plain", study)
    base = study / "out" / "base"

    def report(second: Path, out: Path) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "medinj"), "report", f"--model=base={base}", f"--model=other={second}",
                   "--baseline", "base", "--bootstrap", "200", "--out", str(out)]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    compared = report(family, tmp_path / "families")
    assert compared.returncode == 0, compared.stderr[-2000:]
    results = [path for folder in (base, family) for path in folder.rglob("results_*.json")]
    shas = [json.loads(path.read_text(encoding="utf-8"))["chat_template_sha"] for path in results]
    assert len(set(shas)) == 2
    text = (tmp_path / "families" / "report.md").read_text(encoding="utf-8")
    assert all(f"`{sha}`" in text for sha in shas) and "Compared despite" not in text
    refused = report(plain, tmp_path / "refused")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "different chat_template_applied: {'base': True, 'other': False}" in refused.stderr
