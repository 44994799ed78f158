"""Benchmark: what reusing shared prompt heads saves in ``medinj-hf``, with and without a chat template.

SmolLM2-135M-Instruct (float32, CPU), the first N MCQU and N MCQ FrenchMedMCQA test questions,
``medinj_frenchmedmcqa`` (choice scoring) and ``medinj_frenchmedmcqa_gen`` (constrained
generation) through lm-eval, each run with ``reuse_prefix`` off then on, in one process.

Usage: python bench/prefix_reuse.py --data_dir DIR --limit 100 --out bench/prefix_reuse.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from bench_cli import benchmark_parser, parse_or_render
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_medinj.demo import smollm2_gguf
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path

TASKS = ("medinj_frenchmedmcqa", "medinj_frenchmedmcqa_gen")


def render_markdown(report: dict[str, Any]) -> str:
    """One line per (chat, task): wall time off and on, the speed-up and the tokens reused."""
    rows = report["runs"]
    lines = [
        "| chat template | task | reuse off (s) | reuse on (s) | speed-up | prompt tokens reused | em equal |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    by_key = {(row["chat"], row["task"], row["reuse"]): row for row in rows}
    for chat in (False, True):
        for task in TASKS:
            off, on = by_key[chat, task, False], by_key[chat, task, True]
            lines.append(
                f"| {'yes' if chat else 'no'} | `{task}` | {off['wall_s']:.1f} | {on['wall_s']:.1f} "
                f"| {off['wall_s'] / on['wall_s']:.2f} x | {on['reused_prefix_tokens']:,} | {off['em'] == on['em']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, default_out="bench/prefix_reuse.json")
    args = parse_or_render(parser, render_markdown)
    if args is None:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder, name = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": args.data_dir})
    runs = []
    for chat in (False, True):
        for task in TASKS:
            for reuse in (False, True):
                lm = MedinjHFLM(
                    pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, device="cpu", reuse_prefix=reuse
                )
                start = time.perf_counter()
                results = simple_evaluate(
                    model=lm, tasks=[task], task_manager=manager, limit=args.limit, apply_chat_template=chat
                )
                wall = time.perf_counter() - start
                em = {name: values["em,none"] for name, values in results["results"].items()}
                runs.append(
                    {
                        "chat": chat,
                        "task": task,
                        "reuse": reuse,
                        "wall_s": wall,
                        "reused_prefix_tokens": lm.reused_prefix_tokens,
                        "em": em,
                    }
                )
                print(f"[bench] chat={chat} {task} reuse={reuse}: {wall:.1f} s", flush=True)
    report = {
        "setup": {
            "model": f"{folder / name} (dequantised to float32)",
            "questions_per_format": args.limit,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(),
        },
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(render_markdown(report))


if __name__ == "__main__":
    main()
