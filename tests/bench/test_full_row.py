"""``bench/full_row.py`` at a toy scale on the CPU, so the script cannot rot.

One real run (subprocess: real lm-eval runs, real toy models, real files), then its JSON checked
against what the command asked for: every step of both workloads, item counts equal to the scaled
test sizes (recomputed here, and counted in the files written), positive timings, and every derived
figure (whole-step seconds, ratios to the authors' loops, minutes per row) recomputed from the
entries it is derived from.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.demo import smollm2_gguf

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "full_row.py"
SCALE = 0.001
SLICE = 6
# Full test sizes: MediQAl's (README); MedInjection-FR's as the script assumes them (bench/full_row_data.py).
FULL = {
    "medinjection": {"Native/mcqu": 4343, "Translated/mcqu": 15235, "Native/mcq": 3384, "Native/oeq": 4969},
    "mediqal": {"mcqu": 4343, "mcqm": 3384, "oeq": 4969},
}
MCQ_FILES = {"medinjection": ("Native/mcqu", "Translated/mcqu", "Native/mcq"), "mediqal": ("mcqu", "mcqm")}
OEQ_FILE = {"medinjection": "Native/oeq", "mediqal": "oeq"}
STEPS = ("authors_mcq", "mcq_gen", "mcq_choice", "authors_oeq", "oeq_generation", "judge", "authors_judge")
AUTHORS_OF = {"mcq_gen": "authors_mcq", "mcq_choice": "authors_mcq", "oeq_generation": "authors_oeq",
              "judge": "authors_judge"}  # fmt: skip
LM_EVAL_STEPS = ("mcq_gen", "mcq_choice", "oeq_generation")


def scaled(count: int) -> int:
    return max(2, math.ceil(count * SCALE))


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env, cwd=REPO
    )


def records_in(path: Path) -> int:
    return len(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def report(frenchmedmcqa_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    try:
        smollm2_gguf()
    except SystemExit as missing:
        pytest.skip(str(missing))
    folder = tmp_path_factory.mktemp("full_row")
    out, data = folder / "full_row.json", folder / "data"
    process = run_script(
        "--scale", str(SCALE), "--slice", str(SLICE), "--layers", "2", "--judge_layers", "2", "--threads", "1",
        "--authors_items", "2", "--authors_oeq_items", "1", "--authors_judge_items", "2",
        "--frenchmedmcqa_dir", str(frenchmedmcqa_dir), "--data_dir", str(data), "--out", str(out),
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8")), out, data


def test_every_step_of_both_workloads_with_the_scaled_counts(report: tuple[dict[str, Any], Path, Path]) -> None:
    results, _, data = report
    assert "partial" not in results  # the steps written as they came were replaced by the whole report
    assert set(results["steps"]) == {f"{w}/{s}" for w in FULL for s in STEPS}
    for workload, sizes in FULL.items():
        expected = {name: scaled(count) for name, count in sizes.items()}
        assert results["setup"]["items"][workload] == expected
        on_disk = {
            "Native/mcqu": data / workload / "Native/Test/mcqu/mcqu_test.json",
            "Translated/mcqu": data / workload / "Translated/Test/mcqu/mcqu_test.json",
            "Native/mcq": data / workload / "Native/Test/mcq/mcq_test.json",
            "Native/oeq": data / workload / "Native/Test/oeq/oeq_test.json",
            "mcqu": data / workload / "mcqu/test.json",
            "mcqm": data / workload / "mcqm/test.json",
            "oeq": data / workload / "oeq/test.json",
        }
        assert {name: records_in(on_disk[name]) for name in sizes} == expected
        mcq = sum(expected[name] for name in MCQ_FILES[workload])
        oeq = expected[OEQ_FILE[workload]]
        steps = {step: results["steps"][f"{workload}/{step}"] for step in STEPS}
        for step in ("authors_mcq", "mcq_gen", "mcq_choice"):
            assert steps[step]["items"] == mcq, step
        for step in ("authors_oeq", "oeq_generation", "judge", "authors_judge"):
            assert steps[step]["items"] == oeq, step
        # --slice 6: each task keeps its share (lm-eval's limit, rounded up per task), the rest is extrapolated
        assert mcq > SLICE and SLICE <= steps["mcq_gen"]["items_measured"] < mcq
        assert steps["mcq_gen"]["lm_eval_limit"] == pytest.approx(SLICE / mcq)
        assert steps["oeq_generation"]["items_measured"] == oeq <= SLICE  # measured whole
        assert steps["judge"]["items_measured"] == oeq
        assert steps["authors_mcq"]["items_measured"] == sum(min(2, expected[n]) for n in MCQ_FILES[workload])
        assert steps["authors_oeq"]["items_measured"] == 1 and steps["authors_judge"]["items_measured"] == 2
        assert steps["oeq_generation"]["new_tokens"] == max(4, math.ceil(512 * SCALE))


def test_timings_are_positive_and_derived_figures_follow_from_the_entries(
    report: tuple[dict[str, Any], Path, Path],
) -> None:
    results, _, _ = report
    steps = results["steps"]
    for name, row in steps.items():
        assert row["seconds_measured"] > 0 and row["seconds"] > 0 and row["peak_memory_mib"] > 0, name
        assert row["layer_scale"] == 2  # 2 of the toy models' 4 layers
        assert row["items_per_s"] == pytest.approx(row["items"] / row["seconds"])
        assert row["extrapolated"]  # every step scaled back to 4 layers
        step = row["step"]
        if step in LM_EVAL_STEPS:
            per_item_model = row["model_seconds_measured"] / row["items_measured"]
            assert 0 < row["model_seconds_measured"] < row["seconds_measured"]
            assert row["model_seconds"] == pytest.approx(per_item_model * row["items"] * 2)
            outside = row["outside_model_fixed_seconds"] + row["outside_model_seconds_per_item"] * row["items"]
            assert row["seconds"] == pytest.approx(row["model_seconds"] + outside)
            if row["items_measured"] < row["items"]:
                assert row["probe"]["items"] < row["items_measured"]
            else:
                assert row["probe"] is None
                assert outside == pytest.approx(row["seconds_measured"] - row["model_seconds_measured"])
        elif step == "authors_mcq":
            per_file = row["per_file"]
            assert row["seconds"] == pytest.approx(
                2 * sum(f["seconds_measured"] / f["items_measured"] * f["items"] for f in per_file.values())
            )
        else:
            assert row["seconds"] == pytest.approx(row["seconds_measured"] / row["items_measured"] * row["items"] * 2)
        if step in AUTHORS_OF:
            authors = steps[f"{row['workload']}/{AUTHORS_OF[step]}"]
            assert row["ratio_to_authors"] == pytest.approx(row["seconds"] / authors["seconds"])
    for workload, row in results["rows"].items():
        seconds = {step: steps[f"{workload}/{step}"]["seconds"] for step in ("mcq_gen", "oeq_generation", "judge")}
        assert row["minutes_per_row"] == pytest.approx(sum(seconds.values()) / 60)
        assert row["dominant_step"] == max(seconds, key=seconds.__getitem__)
        assert sum(row["share_by_step"].values()) == pytest.approx(1)
        authors = sum(steps[f"{workload}/{AUTHORS_OF[step]}"]["seconds"] for step in seconds)
        assert row["authors_minutes_per_row"] == pytest.approx(authors / 60)
    setup = results["setup"]
    assert setup["toy_models"] and setup["scale"] == SCALE and setup["slice"] == SLICE
    assert setup["models"]["evaluated"]["layers"] == 2 and setup["models"]["evaluated"]["full_layers"] == 4
    assert "peak RSS" in setup["memory"]


def test_render_prints_every_step(report: tuple[dict[str, Any], Path, Path]) -> None:
    results, out, _ = report
    process = run_script("--render", str(out))
    assert process.returncode == 0, process.stderr[-2000:]
    for name in results["steps"]:
        assert f"| {name} |" in process.stdout
    assert "minutes per row" in process.stdout


def test_a_missing_text_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    process = run_script("--scale", "0.001", "--frenchmedmcqa_dir", str(tmp_path / "absent"))
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        f"full_row.py: error: --frenchmedmcqa_dir {tmp_path / 'absent'}: no FrenchMedMCQA train.json there"
    ]
