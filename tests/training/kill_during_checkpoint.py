"""Run ``train/sft.py`` and SIGKILL it while it writes a checkpoint: a torn checkpoint, for real.

    python -m tests.training.kill_during_checkpoint STEP PART SFT_FLAGS...

When the Trainer writes ``checkpoint-STEP``, the process kills itself with SIGKILL with one file cut
in half: PART ``weights`` right after the adapter weights are written (cut; nothing after them:
before the fix, "Can't find a valid checkpoint" on every later run), ``optimizer`` in the middle of
the optimizer state (weights written; scheduler, RNG states and trainer state not). The rest is
the Trainer's own code and ``train/sft.py`` unchanged; only the moment of the kill is chosen, so the
test is deterministic.
"""

from __future__ import annotations

import io
import os
import runpy
import signal
import sys
from pathlib import Path

import torch
from transformers import Trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cut_in_half_and_die(path: str, data: bytes | None = None) -> None:
    """Leave ``path`` holding the first half of its bytes (of ``data`` when given), then SIGKILL."""
    data = Path(path).read_bytes() if data is None else data
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def main(step: str, part: str, *flags: str) -> None:
    target = f"checkpoint-{step}"
    save_model, save_optimizer = Trainer._save, Trainer._save_optimizer_and_scheduler

    def torn_weights(self: Trainer, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        save_model(self, output_dir, state_dict)
        if part == "weights" and output_dir and Path(output_dir).name == target:
            _cut_in_half_and_die(os.path.join(output_dir, "adapter_model.safetensors"))

    def torn_optimizer(self: Trainer, output_dir: str) -> None:
        if part == "optimizer" and Path(output_dir).name == target:
            buffer = io.BytesIO()
            torch.save(self.optimizer.state_dict(), buffer)  # the bytes the Trainer writes there
            _cut_in_half_and_die(os.path.join(output_dir, "optimizer.pt"), buffer.getvalue())
        save_optimizer(self, output_dir)

    Trainer._save, Trainer._save_optimizer_and_scheduler = torn_weights, torn_optimizer
    sft = REPO_ROOT / "train" / "sft.py"
    sys.argv = [str(sft), *flags]
    runpy.run_path(str(sft), run_name="__main__")


if __name__ == "__main__":
    main(*sys.argv[1:])
