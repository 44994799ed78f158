"""Two data-parallel CPU processes through ``accelerate launch`` end with identical weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig

from tests.training.conftest import REPO_ROOT, SMOKE_SETTINGS

ACCELERATE_CONFIG = REPO_ROOT / "train" / "accelerate" / "cpu_2proc.yaml"


@pytest.mark.slow
def test_two_processes_train_two_configurations_in_lockstep(
    tiny_model_dir: Path, pools_dir: Path, tmp_path: Path
) -> None:
    accelerate = shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is not on PATH"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [accelerate, "launch", "--config_file", str(ACCELERATE_CONFIG), str(REPO_ROOT / "train" / "sft.py"),
         "--mixtures", "NAT", "TRAD", "--method", "lora", "--settings", str(SMOKE_SETTINGS),
         "--model_name_or_path", str(tiny_model_dir), "--data_dir", str(pools_dir),
         "--output_dir", str(tmp_path), "--save_strategy", "no", "--report_to", "none"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    hashes = set()
    for config in ("NAT", "TRAD"):  # two configurations in one launch, as --mixtures all does
        metrics = json.loads((tmp_path / config / "metrics.json").read_text(encoding="utf-8"))
        assert (metrics["distributed_type"], metrics["world_size"], metrics["global_step"]) == ("MULTI_CPU", 2, 3)
        first, second = metrics["weights_sha256_by_rank"]
        assert first is not None and first == second
        hashes.add(first)
        # Each step consumed two processes x batch 2 of the 40 examples: the ranks saw different data.
        assert metrics["train"]["epoch"] == pytest.approx(3 * 2 * 2 / 40)
    assert len(hashes) == 2


@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed_zero3", "cpu_2proc"])
def test_shipped_accelerate_configs_load(name: str) -> None:
    config = ClusterConfig.from_yaml_file(str(REPO_ROOT / "train" / "accelerate" / f"{name}.yaml"))
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED", "cpu_2proc": "MULTI_GPU"}
    assert config.distributed_type.value == expected[name]
    assert config.num_machines == 1 and config.num_processes >= 2
