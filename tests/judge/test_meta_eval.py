"""The objective sanity set and an end-to-end ``judge/meta_eval.py`` run with two judges (default prompt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.benchmarks.single_file import ReadOptions, read_records
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.items import read_labelled, write_labelled
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.sanity import mcq_sanity_items
from lm_eval_medinj.judge.stats import williams_t
from tests.judge.cli import run_script


def test_sanity_items_from_frenchmedmcqa(frenchmedmcqa_dir: Path) -> None:
    items = mcq_sanity_items(frenchmedmcqa_dir / "test.json", n_questions=30, seed=0)
    records = {r.id: r for r in read_records(frenchmedmcqa_dir / "test.json", ReadOptions()).records}
    assert len(items) == 60 and [x.rating for x in items[:4]] == [1.0, 0.0, 1.0, 0.0]
    for labelled in items:
        record = records[labelled.item.id.rsplit("+", 1)[0]]
        correct = {record.options[letter] for letter in record.gold}
        assert set(labelled.item.reference.split(" ; ")) == correct
        candidate = set(labelled.item.candidate.split(" ; "))
        assert (candidate == correct) == (labelled.rating == 1.0)
        assert len(candidate) == len(correct) and candidate <= set(record.options.values())
    assert mcq_sanity_items(frenchmedmcqa_dir / "test.json", 30, 0) == items  # seeded


@pytest.mark.slow
def test_meta_eval_two_judges_end_to_end(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_model_dir_b: Path,
    labelled_small: Path,
    frenchmedmcqa_dir: Path,
) -> None:
    out = tmp_path / "meta"
    judges = [f"hf:{tiny_model_dir}", f"hf:{tiny_model_dir_b}"]
    done = run_script(
        "meta_eval.py",
        "--data",
        labelled_small,
        "--sanity-from",
        frenchmedmcqa_dir / "test.json",
        "--sanity-questions",
        "8",
        "--judge",
        judges[0],
        "--judge",
        judges[1],
        "--out",
        out,
        "--cache",
        tmp_path / "cache.sqlite",
        "--n-boot",
        "200",
        "--no-progress",
        timeout=400,
    )
    assert done.returncode == 0, done.stderr
    for section in (
        "## Agreement",
        "## Paired comparison",
        "## Chosen judge",
        "## Calibration",
        "## Verbosity and position",
    ):
        assert section in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    n = 24 + 16
    assert metrics["prompt"] == load_prompt().prompt_id and metrics["prompt"].startswith("paper@")  # the default
    assert metrics["n_items"] == n and metrics["rating_values"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    sanity = read_labelled(out / "sanity_items.jsonl")
    assert {x.rating for x in sanity} == {1.0, 5.0}  # 0/1 labels put on the 1-5 scale

    for judge in judges:
        result = metrics["judges"][judge]
        for name in ("pearson", "spearman", "kendall_tau_b", "accuracy", "cohen_kappa"):
            estimate = result["agreement"][name]
            assert set(estimate) == {"value", "low", "high"}
        pearson = result["agreement"]["pearson"]
        assert pearson["low"] <= pearson["value"] <= pearson["high"]
        calibration = Calibration.load(Path(result["calibration_path"]))
        assert (calibration.judge, calibration.prompt, calibration.n) == (judge, metrics["prompt"], n)
        assert calibration.length_coef == pytest.approx(result["verbosity"]["length_coef_given_label"])
        assert result["padding"]["n"] == result["swap"]["n"] == n
        assert (out / f"scatter_{Path(result['calibration_path']).stem.removeprefix('calibration_')}.png").is_file()

    [pair] = metrics["pairs"]
    assert pair["williams_t"] == pytest.approx(williams_t(pair["r_a"], pair["r_b"], pair["r_ab"], n)[0])
    assert pair["r_a"] == pytest.approx(metrics["judges"][judges[0]]["agreement"]["pearson"]["value"])
    assert pair["diff"]["value"] == pytest.approx(pair["r_a"] - pair["r_b"])
    best = max(judges, key=lambda j: metrics["judges"][j]["agreement"]["pearson"]["value"])
    assert metrics["best"]["judge"] == best
    assert f"**{best}**" in (out / "report.md").read_text()
    assert len(list(out.glob("*.png"))) == 4


def test_labelled_files_round_trip_and_need_a_rating(tmp_path: Path, labelled_small: Path) -> None:
    items = read_labelled(labelled_small)
    write_labelled(tmp_path / "copy.jsonl", items)
    assert read_labelled(tmp_path / "copy.jsonl") == items
    (tmp_path / "bad.jsonl").write_text('{"question": "Q ?", "reference": "R", "candidate": "C"}\n')
    with pytest.raises(ValueError, match="no rating column"):
        read_labelled(tmp_path / "bad.jsonl")
