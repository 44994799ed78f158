"""Measurement: Table 1's EM under each MCQ decoding, and how often the decodings agree per item.

FrenchMedMCQA test questions are written as MedInjection-FR Hub-shaped records
(``tests/helpers/hub_shaped.py``, the files the per-item agreement tests use: the record's own
conversation, options only in the user turn) and evaluated through lm-eval on ``medinj-hf`` with the model's chat
template, the paper's setting:

- ``choice``: ``medinj_{mcqu,mcq}_native``, the most probable complete answer (answer + end of
  turn) among all valid ones;
- ``gen_paper``: ``_gen`` under the authors' token mask, budget, stop and parse (the default);
- ``gen_strict``: ``_gen`` under ``protocol: strict`` (sorted letter sets, strict parse);
- ``greedy_paper``: ``_greedy``, free generation with the authors' budget and parse.

For each decoding: EM on MCQU, on MCQ, their mean (Table 1's metric) and Hamming on MCQ; for
each pair: the share of items with the same predicted letter set and with the same EM.

Usage: python bench/protocol_agreement.py --data_dir ../shared/data/frenchmedmcqa --limit 1000 \
    --apply_chat_template --out bench/protocol_agreement.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import torch
from bench_cli import add_model_arguments, benchmark_parser, parse_or_render
from constrained_bench import load_model
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from lm_eval_medinj.mcq.task import doc_to_choice
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol import PAPER, STRICT, protocol_named

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout: the agreement tests' file writer
from tests.helpers.hub_shaped import write_hub_shaped  # noqa: E402

FORMATS = ("mcqu", "mcq")
# decoding -> (task suffix, protocol)
DECODINGS = {
    "choice": ("", PAPER.name),
    "gen_paper": ("_gen", PAPER.name),
    "gen_strict": ("_gen", STRICT.name),
    "greedy_paper": ("_greedy", PAPER.name),
}


def predictions(sample: dict[str, Any], decoding: str) -> frozenset[str] | None:
    """The letter set a logged sample predicted (None or empty: no valid answer)."""
    doc = sample["doc"]
    if decoding == "choice":
        scores = [response[0][0] for response in sample["resps"]]
        return frozenset(doc_to_choice(doc)[max(range(len(scores)), key=scores.__getitem__)].split(", "))
    return protocol_named(doc["protocol"]).parse(sample["resps"][0][0], doc["option_letters"], doc["task"] == "mcq")


def evaluate(lm: MedinjHFLM, data_dir: Path, decoding: str, chat: bool) -> tuple[dict[str, Any], float]:
    """Per-item (em, hamming, prediction) of one decoding over both formats, and its wall time."""
    suffix, protocol = DECODINGS[decoding]
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": str(data_dir), "protocol": protocol})
    tasks = [f"medinj_{task}_native{suffix}" for task in FORMATS]
    start = time.perf_counter()
    results = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, log_samples=True, apply_chat_template=chat)
    wall = time.perf_counter() - start
    items = {}
    for samples in results["samples"].values():
        for sample in samples:
            predicted = predictions(sample, decoding)
            items[sample["doc"]["id"]] = {
                "task": sample["doc"]["task"],
                "em": sample["em"],
                "hamming": sample.get("hamming"),
                "prediction": ", ".join(sorted(predicted)) if predicted else "",
            }
    return items, wall


def summary(per_item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """EM per format, Table 1's mean, Hamming on MCQ, per decoding; agreement per pair."""
    table = {}
    for decoding, items in per_item.items():
        em = {task: _mean([i["em"] for i in items.values() if i["task"] == task]) for task in FORMATS}
        hamming = _mean([i["hamming"] for i in items.values() if i["task"] == "mcq"])
        table[decoding] = {"em_mcqu": em["mcqu"], "em_mcq": em["mcq"], "em": (em["mcqu"] + em["mcq"]) / 2,
                           "hamming_mcq": hamming}  # fmt: skip
    agreement = {}
    for first, second in combinations(per_item, 2):
        ids = per_item[first].keys()
        same_answer = _mean([per_item[first][i]["prediction"] == per_item[second][i]["prediction"] for i in ids])
        same_em = _mean([per_item[first][i]["em"] == per_item[second][i]["em"] for i in ids])
        agreement[f"{first} / {second}"] = {"same_answer": same_answer, "same_em": same_em}
    return {"table": table, "agreement": agreement}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def render_markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        f"{setup['model']}, {setup['items']['mcqu']} MCQU + {setup['items']['mcq']} MCQ questions, "
        f"chat template: {setup['apply_chat_template']}",
        "",
        "| decoding | EM MCQU | EM MCQ | EM (Table 1) | Hamming MCQ | wall (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for decoding, row in report["summary"]["table"].items():
        lines.append(
            f"| {decoding} | {100 * row['em_mcqu']:.2f} | {100 * row['em_mcq']:.2f} | {100 * row['em']:.2f} "
            f"| {100 * row['hamming_mcq']:.2f} | {report['wall_s'][decoding]:.1f} |"
        )
    lines += ["", "| pair | same predicted answer | same EM |", "|---|---:|---:|"]
    for pair, row in report["summary"]["agreement"].items():
        lines.append(f"| {pair} | {100 * row['same_answer']:.1f}% | {100 * row['same_em']:.1f}% |")
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, default_out="bench/protocol_agreement.json")
    add_model_arguments(parser)
    args = parse_or_render(parser, render_markdown)
    if args is None:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model, tokenizer, description = load_model(args)
    lm = MedinjHFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, device=args.device)
    per_item: dict[str, dict[str, Any]] = {}
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        data_dir = write_hub_shaped(Path(args.data_dir), Path(folder), args.limit)
        for decoding in DECODINGS:
            per_item[decoding], wall[decoding] = evaluate(lm, data_dir, decoding, args.apply_chat_template)
    items = {task: sum(i["task"] == task for i in per_item["choice"].values()) for task in FORMATS}
    report = {
        "setup": {
            "model": description,
            "items": items,
            "apply_chat_template": args.apply_chat_template,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
        },
        "wall_s": wall,
        "summary": summary(per_item),
        "per_item": per_item,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(render_markdown(report))


if __name__ == "__main__":
    main()
