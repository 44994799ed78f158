"""Training throughput (trained tokens per second) of train/sft.py's trainer, with and without packing.

    python -m tests.helpers.tiny_model /tmp/tiny && python -m tests.training.fixtures /tmp/pools
    python bench/train_throughput.py --model /tmp/tiny --data_dir /tmp/pools --out /tmp/train_throughput.json

Tokens are the non-padding input tokens the trainer counts; the first ``--warmup`` steps are
not timed. The packing modes are measured in turn, ``--repeats`` times; prints a Markdown table
of the medians and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

from lm_eval_medinj.training.examples import to_dataset
from lm_eval_medinj.training.mixtures import MixtureSettings, build_mixture, load_pools
from lm_eval_medinj.training.runner import peft_config
from lm_eval_medinj.training.settings import ModelArguments


class _Clock(TrainerCallback):
    """Wall time and token count from the end of the warm-up steps to the end of training."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None

    def on_step_end(self, args, state, control, **kwargs):
        now = (time.perf_counter(), float(state.num_input_tokens_seen or 0))
        if state.global_step == self.warmup:
            self.start = now
        self.end = now


def measure(
    model_path: str, data_dir: Path, packing: str | None, method: str, steps: int, warmup: int
) -> dict[str, Any]:
    """Train ``steps`` steps on the ALL mixture and return tokens/s after the warm-up.

    ``packing`` is ``None`` (padded batches) or TRL's packing strategy: ``bfd`` (best-fit, padding-free
    and so attention-isolated with flash attention), ``wrapped`` (concatenate and cut).
    """
    settings = MixtureSettings(total=300, allow_smaller=True)
    pools = load_pools(("native", "translated", "synthetic"), settings.tasks, data_dir)
    mixture = build_mixture("ALL", pools, settings)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-sft-"),
        max_steps=steps,
        per_device_train_batch_size=8,
        max_length=512,
        packing=packing is not None,
        packing_strategy=packing or "bfd",
        learning_rate=1e-4,
        logging_steps=steps,
        save_strategy="no",
        report_to="none",
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        include_num_input_tokens_seen="non_padding",
        seed=0,
    )
    clock = _Clock(warmup)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # The rows the recorded figures were measured on: canonical prompt, loss on the answer only.
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path),
        args=args,
        train_dataset=to_dataset(mixture.records, tokenizer, prompt="canonical", loss="assistant"),
        processing_class=tokenizer,
        peft_config=peft_config(ModelArguments(method=method)),
        callbacks=[clock],
    )
    trainer.train()
    assert clock.start is not None and clock.end is not None
    seconds, tokens = clock.end[0] - clock.start[0], clock.end[1] - clock.start[1]
    return {
        "packing": packing or "none",
        "method": method,
        "timed_steps": steps - warmup,
        "tokens": int(tokens),
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="base model folder")
    parser.add_argument("--data_dir", required=True, type=Path, help="train pools in the Hub layout")
    parser.add_argument("--method", default="dora", choices=["dora", "lora", "full"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the packing modes; the median is shown")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "train_throughput.json")
    args = parser.parse_args()
    modes: tuple[str | None, ...] = (None, "bfd", "wrapped")
    runs = [
        measure(args.model, args.data_dir, packing, args.method, args.steps, args.warmup)
        for _ in range(args.repeats)
        for packing in modes  # interleaved, so a busy spell on the machine hits every mode
    ]
    rows = []
    for packing in modes:
        mine = [run for run in runs if run["packing"] == (packing or "none")]
        rates = sorted(run["tokens_per_s"] for run in mine)
        rows.append({**mine[0], "tokens_per_s": statistics.median(rates), "min": rates[0], "max": rates[-1]})
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "rows": rows,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| packing | method | timed steps | tokens | tokens/s (median) | min | max |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [row[key] for key in ("packing", "method", "timed_steps", "tokens", "tokens_per_s", "min", "max")]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


if __name__ == "__main__":
    main()
