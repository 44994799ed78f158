"""train/sft.py's work (lm_eval_medinj.cli.train) end to end: dry-run manifests, errors as one line, the
paper's run shrunk to a tiny model, its adapter and merged folder in lm-eval; the thin script itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lm_eval
import pytest
from lm_eval.tasks import TaskManager

from lm_eval_medinj.benchmarks.layout import DataNotFoundError
from lm_eval_medinj.cli.train import main as sft_cli
from lm_eval_medinj.cli.train import run as sft_main
from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.records import RecordError
from lm_eval_medinj.training import settings as settings_module
from lm_eval_medinj.training.mixtures import CONFIGURATIONS, MixtureShortfallError
from lm_eval_medinj.training.runner import RunExistsError
from lm_eval_medinj.training.settings import parse_args
from tests.training.conftest import REPO_ROOT
from tests.training.fixtures import write_pools

SFT = REPO_ROOT / "train" / "sft.py"
PAPER_SETTINGS = REPO_ROOT / "train" / "configs" / "paper.yaml"


def _dry_run(pools_dir: Path, out: Path) -> dict[str, str]:
    sft_main(
        [
            "--mixtures",
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
    sft_main(["--mixtures", "NAT", "--dry-run", "--data_dir", str(pools_dir), "--total", "30", "--output_dir",
              str(tmp_path)])  # fmt: skip
    assert json.loads((tmp_path / "NAT" / "manifest.json").read_text(encoding="utf-8"))["ids_sha256"] == first["NAT"]


def test_unknown_task_types_are_refused(pools_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown task type"):
        sft_main(["--mixtures", "NAT", "--dry-run", "--tasks", "mcq", "qcm", "--output_dir", str(tmp_path)])


def test_a_short_pool_stops_the_cli_with_the_shortfall(pools_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MixtureShortfallError, match=r"synthetic train pool \(mcq/mcqu.* short by 33453"):
        sft_main(["--mixtures", "SYN", "--dry-run", "--data_dir", str(pools_dir), "--output_dir", str(tmp_path)])


def _with_duplicate_id(root: Path) -> tuple[Path, str]:
    """Pools whose native mcq train file repeats its first record; the file and the id."""
    data = write_pools(root)
    path = data / "Native" / "Train" / "mcq" / "mcq_train.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps([*records, records[0]], ensure_ascii=False), encoding="utf-8")
    return path, records[0]["id"]


def test_a_duplicate_record_id_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, record_id = _with_duplicate_id(tmp_path / "pools")
    argv = ["--mixtures", "NAT", "--dry-run", "--data_dir", str(tmp_path / "pools"), "--output_dir",
            str(tmp_path / "o")]  # fmt: skip
    with pytest.raises(RecordError, match="duplicate id"):
        sft_main(argv)
    with pytest.raises(SystemExit) as stopped:
        sft_cli(argv)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(part in lines[0] for part in (str(path), record_id, "duplicate id")), lines
    assert "Traceback" not in lines[0]
    with pytest.raises(RecordError):  # --debug: the error itself, with its traceback
        sft_cli([*argv, "--debug"])


def test_the_old_config_flag_still_chooses_mixtures_or_reads_a_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "_WARNED", set())  # the message is shown once per process
    with pytest.warns(FutureWarning, match="use --mixtures"):
        script, _, _ = parse_args(["--config", "NAT", "TRAD", "--dry-run"])
    assert script.mixtures == ["NAT", "TRAD"] and script.dry_run
    settings = tmp_path / "s.yaml"
    settings.write_text("mixtures: [SYN]\nlora_r: 4\n", encoding="utf-8")
    script, model, _ = parse_args(["--config", str(settings)])  # TRL's convention: a settings file
    assert (script.mixtures, model.lora_r) == (["SYN"], 4)


@pytest.mark.slow
def test_the_thin_script_runs_a_dry_run_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MEDINJ_DEBUG": ""}
    path, record_id = _with_duplicate_id(tmp_path / "bad")
    good = write_pools(tmp_path / "good")

    def sft(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(SFT), "--mixtures", "NAT", "--dry-run", "--data_dir", str(data), "--total", "30",
                "--output_dir", str(tmp_path / "runs"), *extra]  # fmt: skip
        return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)

    done = sft(good)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "NAT" / "manifest.json").is_file()
    failed = sft(tmp_path / "bad")
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("sft.py: error: ") and str(path) in last and record_id in last and "duplicate id" in last
    debug = sft(tmp_path / "bad", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "RecordError" in debug.stderr


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
    missing = r"no native validation records for task mcqu in .*Native/Validation/mcqu"
    with pytest.raises(DataNotFoundError, match=missing):
        sft_main(["--mixtures", "NAT", "--data_dir", str(data), "--model_name_or_path", "unused",
                  "--output_dir", str(tmp_path / "runs")])  # fmt: skip


@pytest.mark.slow
def test_papers_run_shrunk_to_a_tiny_model_is_evaluated_by_lm_eval_with_peft_and_merged(
    tiny_model_dir: Path, pools_dir: Path, frenchmedmcqa_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)  # the run sets it; restored afterwards
    runs = tmp_path / "runs"
    train = [
        "--mixtures", "NAT-TRAD", "--settings", str(PAPER_SETTINGS),
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
        4,
        "dora",
        "conversation",
        "all",
    )
    # 4 of the epoch's 20 steps: the end of the (partial) epoch still evaluates on the validation split
    assert [round(entry["epoch"], 2) for entry in finished["evaluations"]] == [0.2]
    assert finished["evaluations"][0]["eval_loss"] > 0
    assert finished["validation"]["examples"] == 10  # native and translated mcq + mcqu validation records
    settings = json.loads((run / "settings.json").read_text(encoding="utf-8"))
    assert (settings["prompt"], settings["loss"], settings["validation"]) == (
        "conversation",
        "all",
        finished["validation"],
    )
    trainer_args = settings["training"]  # the arguments handed to SFTTrainer
    assert (trainer_args["train_sampling_strategy"], trainer_args["pad_to_multiple_of"]) == ("group_by_length", 8)
    assert (trainer_args["eval_strategy"], trainer_args["completion_only_loss"], trainer_args["seed"]) == (
        "epoch",
        False,
        42,
    )
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert not (run / "merged").exists()
    sft_main([*train, "--merge"])  # a finished run: merges only
    assert (run / "merged" / "config.json").is_file()
    assert (run / "metrics.json").read_text(encoding="utf-8") == metrics
    with pytest.raises(RunExistsError, match="finished run; pass --overwrite"):
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
