"""Benchmark: free generation (the ``_greedy`` tasks) on lm-eval's ``hf`` and on ``medinj-hf``.

``medinj_frenchmedmcqa_greedy`` (greedy, up to 32 tokens, stop at a newline) on the first N MCQU
and N MCQ FrenchMedMCQA test questions, through lm-eval, alternately on ``hf`` (batches of
``--batch_size`` generated one after the other) and on ``medinj-hf`` (the same batches
prefilled, then decoded together), ``--repeats`` times each, in one process; the answers of the
two backends are compared. Model switches as in ``constrained_bench.py``.

Usage: python bench/free_generation.py --data_dir DIR --limit 100 --out bench/free_generation.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from bench_cli import add_model_arguments, benchmark_parser, parse_or_render
from constrained_bench import fastest_per_item, lm_eval_run, load_model, measure, repeat_name
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path

TASK = "medinj_frenchmedmcqa_greedy"


def answers(results: dict[str, Any]) -> dict[tuple[str, int], str]:
    """Each logged sample's generated text, by (task, document)."""
    return {
        (task, sample["doc_id"]): sample["resps"][0][0]
        for task, samples in results["samples"].items()
        for sample in samples
    }


def render_markdown(report: dict[str, Any]) -> str:
    """Wall time of every run, and the ratio of ``medinj-hf`` to ``hf`` (fastest of each)."""
    runs = {name: row for name, row in report.items() if isinstance(row, dict) and "wall_s" in row}
    lines = ["| run | items | wall (s) | items/s |", "|---|---:|---:|---:|"]
    lines += [
        f"| {name} | {row['items']} | {row['wall_s']:.1f} | {row['items_per_s']:.3f} |" for name, row in runs.items()
    ]
    ratio = fastest_per_item(report, "medinj_hf") / fastest_per_item(report, "hf")
    lines.append(
        f"\n`medinj-hf` / `hf` (fastest of each): {ratio:.2f}; "
        f"answers equal: {report['answers_equal']} of {report['answers']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, default_out="bench/free_generation.json")
    add_model_arguments(parser)
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each backend, alternated")
    args = parse_or_render(parser, render_markdown)
    if args is None:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model, tokenizer, description = load_model(args)
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": args.data_dir})
    lm_args = {"tokenizer": tokenizer, "batch_size": args.batch_size, "device": args.device}
    backends = {"hf": HFLM(pretrained=model, **lm_args), "medinj_hf": MedinjHFLM(pretrained=model, **lm_args)}
    report: dict[str, Any] = {
        "setup": {
            "model": description,
            "device": str(model.device),
            "task": TASK,
            "questions_per_format": args.limit,
            "apply_chat_template": args.apply_chat_template,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(),
        }
    }
    outputs = {}
    for repeat in range(1, args.repeats + 1):
        for backend, lm in backends.items():
            results = measure(
                repeat_name(backend, repeat),
                2 * args.limit,
                lambda lm=lm: lm_eval_run(lm, [TASK], manager, args.limit, args.apply_chat_template),
                report,
            )
            outputs[backend] = answers(results)
    report["answers"] = len(outputs["hf"])
    report["answers_equal"] = sum(outputs["hf"][key] == outputs["medinj_hf"].get(key) for key in outputs["hf"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(render_markdown(report))


if __name__ == "__main__":
    main()
