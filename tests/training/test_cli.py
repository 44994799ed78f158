"""train/sft.py's main end to end: dry-run manifests, the paper's run shrunk to a tiny model, its adapter
and merged folder in lm-eval."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import lm_eval
import pytest
from lm_eval.tasks import TaskManager

from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.training.mixtures import CONFIGURATIONS
from tests.training.conftest import REPO_ROOT
from tests.training.fixtures import write_pools

SFT = REPO_ROOT / "train" / "sft.py"
PAPER_SETTINGS = REPO_ROOT / "train" / "configs" / "paper.yaml"
sft_main = runpy.run_path(str(SFT))["main"]


def _dry_run(pools_dir: Path, out: Path) -> dict[str, str]:
    sft_main(
        [
            "--config",
            "all",
            "--dry-run",
            "--data_dir",
            str(pools_dir),
            "--total",
            "40",
            "--output_dir",
            str(out),
        ]
    )
    manifests = {c: json.loads((out / c / "manifest.json").read_text(encoding="utf-8")) for c in CONFIGURATIONS}
    assert all(m["total"] == 40 and m["config"] == c for c, m in manifests.items())
    assert not any((out / c / "metrics.json").exists() for c in CONFIGURATIONS)
    return {c: m["ids_sha256"] for c, m in manifests.items()}


def test_dry_run_builds_all_seven_with_the_same_sha_twice(pools_dir: Path, tmp_path: Path) -> None:
    first = _dry_run(pools_dir, tmp_path / "a")
    assert len(set(first.values())) == 7
    assert _dry_run(pools_dir, tmp_path / "b") == first


def test_dry_run_never_replaces_another_mixtures_manifest(pools_dir: Path, tmp_path: Path) -> None:
    first = _dry_run(pools_dir, tmp_path)
    sft_main(["--config", "NAT", "--dry-run", "--data_dir", str(pools_dir), "--total", "30", "--output_dir",
              str(tmp_path)])  # fmt: skip
    assert json.loads((tmp_path / "NAT" / "manifest.json").read_text(encoding="utf-8"))["ids_sha256"] == first["NAT"]


def test_unknown_task_types_are_refused(pools_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown task type"):
        sft_main(["--config", "NAT", "--dry-run", "--tasks", "mcq", "qcm", "--output_dir", str(tmp_path)])


def test_a_short_pool_stops_the_cli_with_the_shortfall(pools_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"synthetic train pool \(mcq/mcqu.* short by 33453"):
        sft_main(["--config", "SYN", "--dry-run", "--data_dir", str(pools_dir), "--output_dir", str(tmp_path)])


def _lm_eval(model_args: str, task: str, frenchmedmcqa_dir: Path) -> dict[str, Any]:
    """One lm-eval run of this package's tasks only (no scan of lm-eval's own task folders)."""
    metadata = {"data_dir": str(frenchmedmcqa_dir)}
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata=metadata)
    return lm_eval.simple_evaluate(
        model="hf", model_args=model_args, tasks=[task], task_manager=manager, limit=1,
        device="cpu", batch_size=32, apply_chat_template=True, metadata=metadata,
    )  # fmt: skip


def test_a_missing_validation_split_stops_the_cli(tmp_path: Path) -> None:
    data = write_pools(tmp_path / "pools", validation_sizes={"native": {"mcq": 2}})
    with pytest.raises(SystemExit, match=r"no native validation records for task mcqu in .*Native/Validation/mcqu"):
        sft_main(["--config", "NAT", "--data_dir", str(data), "--model_name_or_path", "unused",
                  "--output_dir", str(tmp_path / "runs")])  # fmt: skip


@pytest.mark.slow
def test_papers_run_shrunk_to_a_tiny_model_is_evaluated_by_lm_eval_with_peft_and_merged(
    tiny_model_dir: Path, pools_dir: Path, frenchmedmcqa_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)  # the run sets it; restored afterwards
    runs = tmp_path / "runs"
    train = [
        "--config", "NAT-TRAD", "--settings", str(PAPER_SETTINGS),
        "--model_name_or_path", str(tiny_model_dir), "--data_dir", str(pools_dir), "--output_dir", str(runs),
        "--total", "40", "--max_steps", "4", "--per_device_train_batch_size", "2",
        "--gradient_accumulation_steps", "1", "--max_length", "256", "--learning_rate", "1e-3",
        "--use_cpu", "true", "--bf16", "false", "--activation_checkpointing", "false", "--save_steps", "2",
        "--logging_steps", "1", "--dataloader_num_workers", "0",
    ]  # fmt: skip
    sft_main(train)
    run = runs / "NAT-TRAD"
    metrics = (run / "metrics.json").read_text(encoding="utf-8")
    finished = json.loads(metrics)
    assert (finished["global_step"], finished["method"], finished["prompt"], finished["loss"]) == (
        4, "dora", "conversation", "all"
    )
    # 4 of the epoch's 20 steps: the end of the (partial) epoch still evaluates on the validation split
    assert [round(entry["epoch"], 2) for entry in finished["evaluations"]] == [0.2]
    assert finished["evaluations"][0]["eval_loss"] > 0
    assert finished["validation"]["examples"] == 10  # native and translated mcq + mcqu validation records
    settings = json.loads((run / "settings.json").read_text(encoding="utf-8"))
    assert (settings["prompt"], settings["loss"], settings["validation"]) == ("conversation", "all",
                                                                                finished["validation"])
    trainer_args = settings["training"]  # the arguments handed to SFTTrainer
    assert (trainer_args["train_sampling_strategy"], trainer_args["pad_to_multiple_of"]) == ("group_by_length", 8)
    assert (trainer_args["eval_strategy"], trainer_args["completion_only_loss"], trainer_args["seed"]) == (
        "epoch", False, 42
    )
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert not (run / "merged").exists()
    sft_main([*train, "--merge"])  # a finished run: merges only
    assert (run / "merged" / "config.json").is_file()
    assert (run / "metrics.json").read_text(encoding="utf-8") == metrics
    with pytest.raises(SystemExit, match="finished run; pass --overwrite"):
        sft_main(train)

    peft = _lm_eval(f"pretrained={tiny_model_dir},peft={run / 'adapter'}", "medinj_frenchmedmcqa", frenchmedmcqa_dir)
    assert f"peft={run / 'adapter'}" in peft["config"]["model_args"]
    assert {"medinj_frenchmedmcqa_mcq", "medinj_frenchmedmcqa_mcqu"} <= set(peft["results"])
    assert "em,none" in peft["results"]["medinj_frenchmedmcqa"]
    merged = _lm_eval(f"pretrained={run / 'merged'}", "medinj_frenchmedmcqa_mcqu", frenchmedmcqa_dir)
    base = _lm_eval(f"pretrained={tiny_model_dir}", "medinj_frenchmedmcqa_mcqu", frenchmedmcqa_dir)
    with_adapter = _loglikelihoods(peft, "medinj_frenchmedmcqa_mcqu")
    assert with_adapter == pytest.approx(_loglikelihoods(merged, "medinj_frenchmedmcqa_mcqu"), abs=1e-4)
    assert with_adapter != pytest.approx(_loglikelihoods(base, "medinj_frenchmedmcqa_mcqu"), abs=1e-4)

    sft_main([*train, "--overwrite", "--max_steps", "2"])
    assert json.loads((run / "metrics.json").read_text(encoding="utf-8"))["global_step"] == 2
    assert not (run / "merged").exists()


def _loglikelihoods(results: dict[str, Any], task: str) -> list[float]:
    """The choice log-likelihoods lm-eval computed for the task's samples."""
    return [float(resp[0][0]) for sample in results["samples"][task] for resp in sample["resps"]]
