"""Human review end to end: two real lm-eval OEQ runs, judged, sampled, rated in a real browser by two
raters, agreement, and the judge meta-evaluated on the collected ratings; the per-model human figures
equal a recomputation from the raters' files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest
from scipy.stats import pearsonr
from sklearn.metrics import cohen_kappa_score

from lm_eval_medinj.annotate.agreement import model_means
from lm_eval_medinj.annotate.folder import model_ratings, read_folder
from lm_eval_medinj.paths import tasks_path
from tests.annotate.helpers import REPO_ROOT, serving
from tests.annotate.page import Page
from tests.helpers.tiny_model import build_tiny_model
from tests.judge.cli import cli_env, run_script
from tests.oeq.conftest import OEQ_FIXTURE_DIR
from tests.oeq.models import build_tiny_encoder

pytestmark = pytest.mark.slow
QUESTIONS = 4  # the OEQ fixture's questions


def _lm_eval_runs(models: dict[str, Path], encoder_dir: Path, out: Path) -> dict[str, Path]:
    """Real lm-eval runs of the native OEQ task with logged samples, one per model, side by side (short answers)."""
    metadata = {"data_dir": str(OEQ_FIXTURE_DIR), "bertscore_model": str(encoder_dir), "bertscore_layer": 2,
                "bertscore_rescale": False}  # fmt: skip
    processes = {}
    for label, model_dir in models.items():
        command = [sys.executable, "-m", "lm_eval", "--include_path", str(tasks_path()), "--tasks",
                   "medinj_oeq_native", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
                   "--metadata", json.dumps(metadata), "--apply_chat_template", "--gen_kwargs", "max_gen_toks=24",
                   "--log_samples", "--output_path", str(out / label)]  # fmt: skip
        processes[label] = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
    for label, process in processes.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-4000:]
        assert len(list((out / label).rglob("samples_medinj_oeq_native_*.jsonl"))) == 1
    return {label: out / label for label in models}


def _annotate(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lm_eval_medinj.annotate.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout, check=False)


def _rating(rater: str, item: str) -> int:
    """What each rater gives to it-0001...it-0006: alice 5 4 3 2 5 4, bob 5 3 3 2 5 3 (mean 5 3.5 3 2 5 3.5:
    above the 1-5 scale's midpoint 3 four times, above the observed ratings' midpoint 3.5 twice)."""
    number = int(item[3:])
    alice = 2 + (number * 3) % 4
    return alice - 1 if rater == "bob" and number % 2 == 0 and alice > 2 else alice


def _rate_all(browser: Any, folder: Path, rater: str, n: int) -> None:
    with serving(folder, rater) as served:
        page = Page(browser).open(served.url)
        for done in range(1, n + 1):
            value = _rating(rater, page.item)
            page.rate_and_wait(lambda v=value: page.key(str(v)), f"{done} / {n}")
        page.wait(lambda: page.shown("done"))


def _recomputed_means(folder: Path) -> dict[str, tuple[int, float]]:
    """Per model (n, mean human rating) from the raw files: last line per item per rater, mean over raters."""
    key = {row["item"]: row["model"] for row in map(json.loads, (folder / "key.jsonl").read_text().splitlines())}
    last: dict[str, dict[str, int]] = {}
    for journal in (folder / "ratings").glob("*.jsonl"):
        for row in map(json.loads, journal.read_text().splitlines()):
            last.setdefault(journal.stem, {})[row["item"]] = row["rating"]
    per_item: dict[str, list[int]] = {}
    for ratings in last.values():
        for item, rating in ratings.items():
            per_item.setdefault(item, []).append(rating)
    by_model: dict[str, list[float]] = {}
    for item, ratings in per_item.items():
        by_model.setdefault(key[item], []).append(fmean(ratings))
    return {model: (len(values), fmean(values)) for model, values in by_model.items()}


def test_sample_serve_rate_agreement_and_meta_eval_end_to_end(
    browser: Any, tiny_model_dir: Path, tmp_path: Path, screenshots: Path
) -> None:
    encoder = build_tiny_encoder(tmp_path / "encoder")
    other_model = build_tiny_model(tmp_path / "tiny-b", seed=1)
    runs = _lm_eval_runs({"tiny": tiny_model_dir, "tiny-b": other_model}, encoder, tmp_path / "out")
    run_a, run_b = runs["tiny"], runs["tiny-b"]
    judge = f"hf:{tiny_model_dir}"
    cache = tmp_path / "judge.sqlite"
    judged = run_script("score.py", run_a, run_b, "--judge", judge, "--cache", cache, "--no-progress")
    assert judged.returncode == 0, judged.stderr[-4000:]

    ann = tmp_path / "ann"
    n = 6
    sampled = _annotate("sample", "--model", f"tiny={run_a}", "--model", f"tiny-b={run_b}", "--n", n, "--seed", 0,
                        "--scale", "likert5", "--by-verdict", "--out", ann)  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    folder = read_folder(ann)
    assert folder.study.stratify == ("model", "judge_verdict") and len(folder.items) == n
    assert sorted(entry.model for entry in folder.key.values()) == ["tiny"] * 3 + ["tiny-b"] * 3
    samples = {}
    for label, run in (("tiny", run_a), ("tiny-b", run_b)):
        rows = map(json.loads, next(run.rglob("samples_*.jsonl")).read_text(encoding="utf-8").splitlines())
        samples[label] = {row["doc_id"]: row for row in rows}
    for name, item in folder.items.items():  # the blinded item is the sample's question, reference and answer
        entry = folder.key[name]
        sample = samples[entry.model][entry.doc_id]
        assert item.answer == sample["filtered_resps"][0] and entry.id == sample["doc"]["id"]
        assert item.question == next(t["content"] for t in sample["doc"]["messages"] if t["role"] == "user")
        assert entry.judge is not None and entry.doc_id < QUESTIONS

    _rate_all(browser, ann, "alice", n)
    _rate_all(browser, ann, "bob", n)
    Page(browser).screenshot(screenshots, "08-end-to-end-done")

    report_path = tmp_path / "agreement.json"
    agreement = _annotate("agreement", ann, "--json", report_path, "--n-boot", 200)
    assert agreement.returncode == 0, agreement.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    items = sorted(folder.items)
    alice, bob = ([_rating(r, item) for item in items] for r in ("alice", "bob"))
    (pair,) = report["kappa"]
    expected = cohen_kappa_score(alice, bob, labels=[1, 2, 3, 4, 5], weights="quadratic")
    assert pair["kappa"]["value"] == pytest.approx(expected)
    assert report["raters"]["alice"]["rated"] == report["raters"]["bob"]["rated"] == n
    assert {row["item"] for row in report["disagreements"]} == {"it-0002", "it-0006"}

    recomputed = _recomputed_means(ann)
    for model, cell in report["models"].items():
        assert (cell["n"], cell["mean"]) == (recomputed[model][0], pytest.approx(recomputed[model][1]))
    folder = read_folder(ann)
    for model, rated in model_ratings(folder).items():  # what the report's human column reads
        assert (len(rated), fmean(x.rating for x in rated)) == (
            recomputed[model][0],
            pytest.approx(recomputed[model][1]),
        )
    assert model_means(folder, n_boot=200)["tiny"]["mean"] == pytest.approx(recomputed["tiny"][1])

    meta = tmp_path / "meta"  # the mean over raters (--rater NAME: tests/annotate/test_folder.py)
    done = run_script("meta_eval.py", "--data", ann, "--judge", judge, "--out", meta, "--cache", cache,
                      "--n-boot", "50", "--no-progress", timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = json.loads((meta / "metrics.json").read_text(encoding="utf-8"))
    means = [fmean((_rating("alice", i), _rating("bob", i))) for i in items]
    assert metrics["n_items"] == n and metrics["rating_values"] == sorted(set(means))
    assert metrics["positive_rate"] == pytest.approx(4 / 6)  # above the folder's scale midpoint 3, not 3.5

    # medinj report --human: the human column equals the raters' files, the judge-human r a recomputation
    report_dir = tmp_path / "report"
    command = [sys.executable, "-m", "lm_eval_medinj.cli", "report", "--model", f"tiny={run_a}",
               "--model", f"tiny-b={run_b}", "--baseline", "tiny", "--bootstrap", "200", "--human", str(ann),
               "--out", str(report_dir)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    human = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))["human"]
    for model, (count, mean) in recomputed.items():
        assert (human["table"][model]["n"], human["table"][model]["estimate"]) == (count, pytest.approx(mean))
    judge_p = {}  # (model, record id) -> P(equivalent), from the judge's own rows beside each run's samples
    for label, run in (("tiny", run_a), ("tiny-b", run_b)):
        for row in map(json.loads, next(run.rglob("judge_*.jsonl")).read_text(encoding="utf-8").splitlines()):
            judge_p[(label, row["id"])] = row["p_equivalent"]
    per_item = {name: fmean((_rating("alice", name), _rating("bob", name))) for name in items}
    pairs = [(judge_p[(entry.model, entry.id)], per_item[name]) for name, entry in folder.key.items()]
    expected_r = pearsonr([p for p, _ in pairs], [h for _, h in pairs]).statistic
    assert human["judge_correlation"]["n"] == n
    assert human["judge_correlation"]["pearson"]["value"] == pytest.approx(expected_r)
    assert "Human expert review" in (report_dir / "report.md").read_text(encoding="utf-8")
