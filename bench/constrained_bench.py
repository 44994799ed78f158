"""Benchmark: MCQ evaluation cost on CPU, SmolLM2-135M-Instruct (float32), FrenchMedMCQA test.

Side by side, in one process, on the first N MCQU and N MCQ test questions:

(a) baseline, the paper authors' procedure: per question, batch size 1, one greedy ``generate``
    and one ``generate`` under their vocabulary mask (:func:`allowed_token_ids`: letters,
    separators, end tokens), both stopping at ``eos_token_id`` and returning per-step scores;
(b) floor: one batched forward pass over the same prompts, nothing else;
(c) this package through lm-eval: ``medinj_frenchmedmcqa`` (choice scoring) on ``hf`` and on
    ``medinj-hf``, ``medinj_frenchmedmcqa_gen`` and ``_greedy`` on ``medinj-hf``, the choice and
    ``_gen`` runs again with ``reuse_prefix=False`` (what the shared prompt head saves), ``_gen``
    again with ``decode_batch_size`` equal to the batch size (what decoding prefilled batches
    together saves), and the ``_gen`` requests of ``protocol: strict`` generated with
    (``medinj-hf`` with neither) and without (``hf``) their constraint (outlines' overhead).

``_gen`` runs the default protocol, the authors' (token mask, budget, stop, parse); its answers
are compared with the masked baseline's, item by item.

The floor, the masked baseline and the ``_gen`` run are measured again last, ``--repeats`` times
in all (the machine may be shared), and ratios use the fastest measurement of each.

``--apply_chat_template`` renders every prompt, the baseline's and the floor's included, in the
model's chat template, as lm-eval's flag of that name does (the paper's setting for an
instruct model).

``--random_model qwen3-4b`` swaps SmolLM2 for a randomly initialised model with the shape of
Qwen3-4B-Instruct-2507 (speed does not depend on weight values), for a run on ``--device cuda
--dtype bfloat16``. Its tokenizer is ``--tokenizer`` (Qwen's needs the Hub) or SmolLM2's.

Usage: python bench/constrained_bench.py --data_dir DIR --limit 100 --out bench/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from bench_cli import add_model_arguments, benchmark_parser, parse_or_render
from lm_eval import simple_evaluate
from lm_eval.loggers.utils import add_env_info
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList, Qwen3Config

from lm_eval_medinj.demo import smollm2_gguf
from lm_eval_medinj.mcq.task import doc_to_choice
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol import STRICT, answer_token_budget
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY
from lm_eval_medinj.protocol.paper import allowed_token_ids, parse_authors_answer

# A prompt as lm-eval renders it, and its document.
Question = tuple[str, dict[str, Any]]

# Qwen3-4B-Instruct-2507's architecture (its config.json), for random-weight speed runs.
QWEN3_4B_SHAPE = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
    "rope_theta": 5000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakMemory:
        self.peak = psutil.Process().memory_info().rss
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while self._running:
            self.peak = max(self.peak, process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()


def measure(name: str, items: int, run: Callable[[], Any], report: dict[str, Any]) -> Any:
    """Time ``run`` and record wall time, items/s and peak memory (RSS, and GPU if any) under ``name``."""
    print(f"[bench] {name} ...", flush=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with PeakMemory() as memory:
        start = time.perf_counter()
        output = run()
        wall = time.perf_counter() - start
    report[name] = {"wall_s": wall, "items": items, "items_per_s": items / wall, "peak_rss_mib": memory.peak / 2**20}
    if torch.cuda.is_available():
        report[name]["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"[bench] {name}: {wall:.1f} s", flush=True)
    return output


class VocabularyMask(LogitsProcessor):
    """The authors' mask: only ``allowed`` token ids."""

    def __init__(self, allowed: torch.Tensor):
        self.allowed = allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.masked_fill(~self.allowed[: scores.shape[-1]], -torch.inf)


def letter_mask(tokenizer: Any, size: int, letters: list[str]) -> torch.Tensor:
    allowed = torch.zeros(size, dtype=torch.bool)
    allowed[allowed_token_ids(tokenizer, letters)] = True
    return allowed


def baseline(model: Any, tokenizer: Any, questions: list[Question], mode: str) -> list[str]:
    """The authors' loop: per question, batch 1, greedy or masked ``generate`` with scores."""
    masks: dict[tuple[str, ...], LogitsProcessorList] = {}
    outputs = []
    for prompt, doc in questions:
        letters = tuple(doc["option_letters"])
        if letters not in masks:
            allowed = letter_mask(tokenizer, model.config.vocab_size, list(letters)).to(model.device)
            masks[letters] = LogitsProcessorList([VocabularyMask(allowed)])
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        budget = answer_token_budget(len(doc["option_letters"]), doc["task"] == "mcq")
        with torch.no_grad():
            generated = model.generate(
                **inputs,
                max_new_tokens=budget,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                logits_processor=masks[letters] if mode == "masked" else None,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.eos_token_id,
            )
        new_tokens = generated.sequences[0, inputs.input_ids.shape[1] :]
        outputs.append(tokenizer.decode(new_tokens, skip_special_tokens=True).strip())
    synchronize(model.device)
    return outputs


def floor(model: Any, tokenizer: Any, questions: list[Question], batch_size: int) -> None:
    """One batched forward pass over the prompts, nothing else."""
    tokenizer.padding_side = "left"
    for start in range(0, len(questions), batch_size):
        batch = tokenizer(
            [prompt for prompt, _ in questions[start : start + batch_size]],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(model.device)
        with torch.no_grad():
            model(**batch)
    synchronize(model.device)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_model(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """SmolLM2 from its GGUF, or a random model of ``args.random_model``'s shape; and a description."""
    dtype = getattr(torch, args.dtype)
    if args.tokenizer:  # only with --random_model
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        folder, name = smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if args.random_model is None:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
        return model.to(args.device).eval(), tokenizer, f"{folder / name} (dequantised to {args.dtype})"
    config = Qwen3Config(
        **QWEN3_4B_SHAPE,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    description = f"random weights, Qwen3-4B-Instruct-2507 shape, {args.dtype}, {args.tokenizer or 'SmolLM2'} tokenizer"
    return model.eval(), tokenizer, description


def lm_eval_run(lm: HFLM, tasks: list[str], manager: TaskManager, limit: int, chat: bool) -> dict[str, Any]:
    return simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, limit=limit, log_samples=True, apply_chat_template=chat
    )


def gen_requests(manager: TaskManager, limit: int, lm: HFLM, chat: bool) -> list[Any]:
    """lm-eval's requests of ``medinj_frenchmedmcqa_gen``, prompts rendered as lm-eval renders them for ``lm``."""
    loaded = manager.load(["medinj_frenchmedmcqa_gen"])["tasks"]
    requests = []
    for task in loaded.values():
        task.build_all_requests(limit=limit, apply_chat_template=chat, chat_template=lm.apply_chat_template)
        requests.extend(task.instances)
    return requests


def strip_constraint(requests: list[Any]) -> list[Any]:
    """The same requests, same token budgets, without constraints."""
    from lm_eval.api.instance import Instance

    return [
        Instance(
            request_type=r.request_type,
            doc=r.doc,
            arguments=(r.args[0], {k: v for k, v in r.args[1].items() if k != CONSTRAINT_KEY}),
            idx=r.idx,
            metadata=(r.task_name, r.doc_id, r.repeats),
        )
        for r in requests
    ]


def choice_letters(results: dict[str, Any], task: str) -> dict[int, str]:
    """The candidate with the highest log-likelihood, per document."""
    letters = {}
    for sample in results["samples"][task]:
        scores = [response[0][0] for response in sample["resps"]]
        letters[sample["doc_id"]] = doc_to_choice(sample["doc"])[max(range(len(scores)), key=scores.__getitem__)]
    return letters


def authors_letters(text: str, doc: dict[str, Any]) -> str | None:
    """The authors' parse of an answer, in canonical form (None: empty prediction)."""
    letters = parse_authors_answer(text, doc["option_letters"], doc["task"] == "mcq")
    return ", ".join(sorted(letters)) if letters else None


def generated_letters(results: dict[str, Any], task: str) -> dict[int, str | None]:
    samples = results["samples"][task]
    return {sample["doc_id"]: authors_letters(sample["resps"][0][0], sample["doc"]) for sample in samples}


def repeat_name(name: str, repeat: int) -> str:
    """The name of the ``repeat``-th measurement of run ``name`` (``name``, ``name_again``, ``name_again_2``...)."""
    return name if repeat == 1 else f"{name}_again" if repeat == 2 else f"{name}_again_{repeat - 1}"


def fastest_per_item(report: dict[str, Any], name: str) -> float:
    """Seconds per item of run ``name``, the fastest of its measurements if it was repeated."""
    return min(
        row["wall_s"] / row["items"] for run, row in report.items() if run == name or run.startswith(f"{name}_again")
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The timing table of a results file, with ratios to the floor (b) and the baseline (a)."""
    timings = {key: value for key, value in report.items() if isinstance(value, dict) and "wall_s" in value}

    def per_item(row: dict[str, Any]) -> float:
        return row["wall_s"] / row["items"]

    floor_per_item = fastest_per_item(report, "floor_forward")
    masked_per_item = fastest_per_item(report, "baseline_masked")
    gpu = all("peak_gpu_mib" in row for row in timings.values())
    lines = [
        "| run | items | wall (s) | items/s | peak RSS (MiB) |"
        + (" peak GPU (MiB) |" if gpu else "")
        + " / floor (b) | / baseline masked (a) |",
        "|---|---:|---:|---:|---:|" + ("---:|" if gpu else "") + "---:|---:|",
    ]
    for name, row in timings.items():
        per_floor = per_item(row) / floor_per_item
        per_masked = per_item(row) / masked_per_item
        lines.append(
            f"| {name} | {row['items']} | {row['wall_s']:.1f} | {row['items_per_s']:.3f} | {row['peak_rss_mib']:.0f} |"
            + (f" {row['peak_gpu_mib']:.0f} |" if gpu else "")
            + f" {per_floor:.2f} | {per_masked:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, default_out="bench/results.json")
    parser.add_argument("--hf_mcq_limit", type=int, default=None, help="MCQ questions for plain hf choice scoring")
    add_model_arguments(parser)
    parser.add_argument("--repeats", type=int, default=2, help="measurements of the floor, masked baseline and _gen")
    args = parse_or_render(parser, render_markdown)
    if args is None:
        return
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)

    model, tokenizer, description = load_model(args)
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": args.data_dir})
    strict = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": args.data_dir, "protocol": STRICT.name})
    lm_args = {"tokenizer": tokenizer, "batch_size": args.batch_size, "device": args.device}
    plain_hf = HFLM(pretrained=model, **lm_args)
    requests = gen_requests(manager, args.limit, plain_hf, args.apply_chat_template)
    strict_requests = gen_requests(strict, args.limit, plain_hf, args.apply_chat_template)
    # The baseline and the floor read the very prompts lm-eval renders for the tasks.
    questions = [(request.args[0], request.doc) for request in requests]
    items = len(questions)
    report: dict[str, Any] = {
        "setup": {
            "model": description,
            "device": str(model.device),
            "questions": dict(Counter(doc["task"] for _, doc in questions)),
            "apply_chat_template": args.apply_chat_template,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        }
    }
    medinj_hf = MedinjHFLM(pretrained=model, **lm_args)
    medinj_hf_no_reuse = MedinjHFLM(pretrained=model, reuse_prefix=False, **lm_args)
    medinj_hf_apart = MedinjHFLM(pretrained=model, decode_batch_size=args.batch_size, **lm_args)
    medinj_hf_like_hf = MedinjHFLM(pretrained=model, reuse_prefix=False, decode_batch_size=args.batch_size, **lm_args)

    floor(model, tokenizer, questions[:1], 1)  # warm-up: first-call allocations are not measured
    measure("floor_forward", items, lambda: floor(model, tokenizer, questions, args.batch_size), report)
    greedy = measure("baseline_greedy", items, lambda: baseline(model, tokenizer, questions, "greedy"), report)
    masked = measure("baseline_masked", items, lambda: baseline(model, tokenizer, questions, "masked"), report)

    def evaluate(name: str, lm: HFLM, task: str, limit: int = args.limit, count: int = items) -> dict[str, Any]:
        """``task`` (``count`` questions, ``limit`` per format) through lm-eval on ``lm``, measured under ``name``."""
        chat = args.apply_chat_template
        return measure(name, count, lambda: lm_eval_run(lm, [task], manager, limit, chat), report)

    choice = evaluate("medinj_hf_choice", medinj_hf, "medinj_frenchmedmcqa")
    reused = {"choice": medinj_hf.reused_prefix_tokens}
    gen = evaluate("medinj_hf_gen", medinj_hf, "medinj_frenchmedmcqa_gen")
    reused["gen"] = medinj_hf.reused_prefix_tokens - reused["choice"]
    evaluate("medinj_hf_choice_no_reuse", medinj_hf_no_reuse, "medinj_frenchmedmcqa")
    evaluate("medinj_hf_gen_no_reuse", medinj_hf_no_reuse, "medinj_frenchmedmcqa_gen")
    evaluate("medinj_hf_gen_apart", medinj_hf_apart, "medinj_frenchmedmcqa_gen")
    evaluate("medinj_hf_greedy", medinj_hf, "medinj_frenchmedmcqa_greedy")
    # Outlines' cost alone: both sides batched as plain hf batches (no shared head, no stacked decoding).
    measure("gen_requests_constrained", items, lambda: medinj_hf_like_hf.generate_until(strict_requests), report)
    unconstrained = strip_constraint(strict_requests)
    measure("gen_requests_unconstrained", items, lambda: plain_hf.generate_until(unconstrained), report)
    hf_mcq_limit = args.hf_mcq_limit or args.limit
    hf_choice_mcqu = evaluate("hf_choice_mcqu", plain_hf, "medinj_frenchmedmcqa_mcqu", count=args.limit)
    hf_choice_mcq = evaluate("hf_choice_mcq", plain_hf, "medinj_frenchmedmcqa_mcq", hf_mcq_limit, count=hf_mcq_limit)

    # The machine may be shared: the runs the targets compare are measured again last, and the
    # ratios use the fastest measurement of each.
    for repeat in range(2, args.repeats + 1):
        evaluate(repeat_name("medinj_hf_gen", repeat), medinj_hf, "medinj_frenchmedmcqa_gen")
        masked_again = repeat_name("baseline_masked", repeat)
        measure(masked_again, items, lambda: baseline(model, tokenizer, questions, "masked"), report)
        floor_again = repeat_name("floor_forward", repeat)
        measure(floor_again, items, lambda: floor(model, tokenizer, questions, args.batch_size), report)
    report["scores"] = {
        run: {task: values for task, values in results["results"].items()}
        for run, results in {"medinj_hf_choice": choice, "medinj_hf_gen": gen}.items()
    }
    report["baseline_outputs_parsed"] = {
        mode: sum(authors_letters(text, doc) is not None for text, (_, doc) in zip(out, questions, strict=True))
        for mode, out in {"greedy": greedy, "masked": masked}.items()
    }
    # _gen is the authors' procedure in batches: the same answers as their loop, item by item.
    by_question = {
        (doc["task"], doc["id"]): authors_letters(text, doc) for text, (_, doc) in zip(masked, questions, strict=True)
    }
    gen_answers = [
        (by_question[(s["doc"]["task"], s["doc"]["id"])], authors_letters(s["resps"][0][0], s["doc"]))
        for samples in gen["samples"].values()
        for s in samples
    ]
    report["gen_vs_baseline_masked_same_answer"] = sum(a == b for a, b in gen_answers) / len(gen_answers)
    max_diff = 0.0
    for task, hf_results in (
        ("medinj_frenchmedmcqa_mcqu", hf_choice_mcqu),
        ("medinj_frenchmedmcqa_mcq", hf_choice_mcq),
    ):
        medinj_samples = {s["doc_id"]: s for s in choice["samples"][task]}
        for sample in hf_results["samples"][task]:
            for hf_response, medinj_response in zip(
                sample["resps"], medinj_samples[sample["doc_id"]]["resps"], strict=True
            ):
                max_diff = max(max_diff, abs(hf_response[0][0] - medinj_response[0][0]))
    report["hf_vs_medinj_hf_max_abs_logprob_diff"] = max_diff
    single_token = all(len(tokenizer.encode(f" {letter}", add_special_tokens=False)) == 1 for letter in "ABCDE")
    agreement = {}
    for fmt in ("mcqu", "mcq"):
        chosen = choice_letters(choice, f"medinj_frenchmedmcqa_{fmt}")
        generated = generated_letters(gen, f"medinj_frenchmedmcqa_{fmt}_gen")
        agreement[fmt] = sum(chosen[i] == generated[i] for i in chosen) / len(chosen)
    report["choice_vs_gen_agreement"] = agreement
    report["option_letters_single_tokens"] = single_token
    timings = {
        key: fastest_per_item(report, key)
        for key, value in report.items()
        if isinstance(value, dict) and "wall_s" in value and "_again" not in key
    }
    report["ratios"] = {
        "choice_over_floor": timings["medinj_hf_choice"] / timings["floor_forward"],
        "gen_over_floor": timings["medinj_hf_gen"] / timings["floor_forward"],
        "choice_over_baseline_masked": timings["medinj_hf_choice"] / timings["baseline_masked"],
        "gen_over_baseline_masked": timings["medinj_hf_gen"] / timings["baseline_masked"],
        "greedy_over_baseline_greedy": timings["medinj_hf_greedy"] / timings["baseline_greedy"],
        "outlines_overhead": timings["gen_requests_constrained"] / timings["gen_requests_unconstrained"] - 1,
        "choice_reuse_over_no_reuse": timings["medinj_hf_choice"] / timings["medinj_hf_choice_no_reuse"],
        "gen_reuse_over_no_reuse": timings["medinj_hf_gen"] / timings["medinj_hf_gen_no_reuse"],
        "gen_together_over_apart": timings["medinj_hf_gen"] / timings["medinj_hf_gen_apart"],
    }
    report["reused_prefix_tokens"] = reused
    # A fixed cost inside every lm-eval run above, not per question: torch's collect_env (pip, nvidia-smi).
    started = time.perf_counter()
    add_env_info({})
    report["lm_eval_add_env_info_s"] = time.perf_counter() - started
    report["prompt_tokens"] = sum(len(tokenizer(prompt, add_special_tokens=False).input_ids) for prompt, _ in questions)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report["ratios"], indent=2))


if __name__ == "__main__":
    main()
