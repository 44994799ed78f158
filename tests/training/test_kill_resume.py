"""``train/sft.py`` killed (SIGKILL) while writing a checkpoint, twice, then resumed: it ends with the
weights and the whole-run ``train_loss`` of an uninterrupted run; and no file of any of these runs
holds the token given with ``--hub_token``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.training.conftest import REPO_ROOT, SMOKE_SETTINGS

SECRET = "hf_medinjTESTtoken0123456789abcdefSECRET"
STEPS = 5


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    env.pop("MEDINJ_DEBUG", None)
    return env


def _sft(out: Path, tiny_model_dir: Path, pools_dir: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    """``train/sft.py`` (or ``prefix``, a module wrapping it) on the tiny model: DoRA, STEPS steps, a
    checkpoint at every step, TensorBoard on, and a Hub token on the command line."""
    flags = [
        "--mixtures", "NAT", "--settings", str(SMOKE_SETTINGS), "--model_name_or_path", str(tiny_model_dir),
        "--data_dir", str(pools_dir), "--output_dir", str(out), "--max_steps", str(STEPS), "--eval_strategy", "no",
        "--hub_token", SECRET,
    ]  # fmt: skip
    command = (
        [sys.executable, *prefix, *flags] if prefix else [sys.executable, str(REPO_ROOT / "train" / "sft.py"), *flags]
    )
    return subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600, check=False)


def _kill_during(step: int, part: str) -> tuple[str, ...]:
    return ("-m", "tests.training.kill_during_checkpoint", str(step), part)


def _adapter_sha256(run: Path) -> str:
    tensors = load_file(run / "adapter" / "adapter_model.safetensors")
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].float().numpy().tobytes())
    return digest.hexdigest()


def _files_holding(folder: Path, secret: bytes) -> list[str]:
    """Files under ``folder`` whose bytes, or the bytes of a member of a zip (torch pickles), hold ``secret``."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if secret in path.read_bytes():
            found.append(str(path))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                found += [f"{path}!{m}" for m in archive.namelist() if secret in archive.read(m)]
    return found


@pytest.mark.slow
def test_killed_while_writing_checkpoints_then_resumed_equals_an_uninterrupted_run(
    tiny_model_dir: Path, pools_dir: Path, tmp_path: Path
) -> None:
    straight = _sft(tmp_path / "straight", tiny_model_dir, pools_dir)
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = tmp_path / "killed"
    checkpoints = killed / "NAT" / "checkpoints"
    first = _sft(killed, tiny_model_dir, pools_dir, *_kill_during(2, "weights"))
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert (checkpoints / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert not (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    second = _sft(killed, tiny_model_dir, pools_dir, *_kill_during(4, "optimizer"))
    assert second.returncode == -signal.SIGKILL, second.stderr[-3000:]
    assert "checkpoint-2 is incomplete" in second.stderr and "resuming from checkpoint-1" in second.stderr
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3", "checkpoint-4"]
    assert not (checkpoints / "checkpoint-4" / "trainer_state.json").exists()
    resumed = _sft(killed, tiny_model_dir, pools_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-4 is incomplete" in resumed.stderr and "resuming from checkpoint-3" in resumed.stderr

    expected = json.loads((tmp_path / "straight" / "NAT" / "metrics.json").read_text(encoding="utf-8"))
    actual = json.loads((killed / "NAT" / "metrics.json").read_text(encoding="utf-8"))
    assert (actual["resumed_from"], actual["global_step"], actual["train_loss_steps"]) == ("checkpoint-3", STEPS, STEPS)
    assert _adapter_sha256(killed / "NAT") == _adapter_sha256(tmp_path / "straight" / "NAT")
    assert actual["weights_sha256_by_rank"] == expected["weights_sha256_by_rank"]
    # the whole run's loss: the uninterrupted run's, which is the Trainer's own mean over its steps,
    # and the mean of the per-step losses logged (logging_steps 1)
    state = json.loads((killed / "NAT" / "checkpoints" / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    per_step = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(per_step) == STEPS
    assert expected["train"]["train_loss"] == pytest.approx(expected["train"]["session_train_loss"], rel=1e-12)
    assert actual["train"]["train_loss"] == pytest.approx(expected["train"]["train_loss"], rel=1e-12)
    assert actual["train"]["train_loss"] == pytest.approx(sum(per_step) / STEPS, rel=1e-12)
    # what the Trainer alone reports after the resume: the mean of the last two steps only
    assert actual["train"]["session_train_loss"] == pytest.approx(sum(per_step[3:]) / 2, rel=1e-12)

    token = SECRET.encode()
    assert (tmp_path / "straight" / "NAT" / "adapter" / "training_args.bin").is_file()
    assert _files_holding(tmp_path, token) == []
    assert "--hub_token is kept out of every file of the run" in resumed.stderr


def _checkpoint(folder: Path, step: int, state: str | None) -> None:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    if state is not None:
        (path / "trainer_state.json").write_text(state, encoding="utf-8")


def test_a_checkpoint_is_complete_when_its_trainer_state_reads_and_names_its_step(tmp_path: Path) -> None:
    from lm_eval_medinj.training.runner import complete_checkpoints

    _checkpoint(tmp_path, 10, json.dumps({"global_step": 10}))
    _checkpoint(tmp_path, 20, json.dumps({"global_step": 20}))
    _checkpoint(tmp_path, 30, '{"global_step": 30, "log_hist')  # cut short
    _checkpoint(tmp_path, 40, None)  # killed before the state was written
    _checkpoint(tmp_path, 50, json.dumps({"global_step": 40}))  # not this step's state
    (tmp_path / "checkpoint-60.tmp").mkdir()  # not a checkpoint folder
    last, incomplete = complete_checkpoints(tmp_path)
    assert last == tmp_path / "checkpoint-20"
    assert incomplete == [tmp_path / f"checkpoint-{step}" for step in (30, 40, 50)]
    assert complete_checkpoints(tmp_path / "checkpoint-10") == (None, [])


def test_the_whole_run_loss_from_the_log_is_the_mean_over_every_step() -> None:
    """Per-step losses logged every 3 steps and at the checkpoints of a run resumed at step 5 and 8
    (each log: the mean since the previous one), against the plain mean of the per-step losses."""
    from lm_eval_medinj.training.runner import whole_run_train_loss

    losses = [6.2, 6.1, 5.9, 5.7, 5.8, 5.2, 5.0, 4.9, 4.7, 4.4, 4.5]
    logged_at = [3, 5, 6, 8, 9, 11]  # every 3 steps, plus checkpoints 5 and 8 (LogBeforeSave) and the end
    history, previous = [], 0
    for step in logged_at:
        history.append({"loss": sum(losses[previous:step]) / (step - previous), "step": step, "epoch": step / 11})
        history.append({"eval_loss": 1.0, "step": step})  # not a training loss
        previous = step
    history.append({"train_loss": 0.0, "step": 11})  # the Trainer's own summary: not a log of steps
    mean, covered = whole_run_train_loss(history)
    assert covered == 11 and mean == pytest.approx(sum(losses) / len(losses), rel=1e-12)
    assert whole_run_train_loss([]) == (None, 0)
