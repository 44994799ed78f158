"""The measured steps of ``full_row.py``: test sets written, models built, each step timed.

``measure(args)`` returns the run's setup and its step entries; ``full_row.py`` checks the
arguments first, then derives the ratios and the minutes per row from the entries.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch
from full_row_data import (
    MEDINJECTION_TEST,
    MEDIQAL_TEST,
    SIZES_SOURCE,
    Source,
    corpus_text,
    read_sources,
    write_medinjection,
    write_mediqal,
)
from full_row_models import (
    BuiltModel,
    bertscore_encoder,
    evaluated_model,
    judge_model,
    load_tokenizer,
    parameter_count,
)
from transformers import LogitsProcessor, LogitsProcessorList

from lm_eval_medinj.base_task import doc_prompt_turns, doc_to_text, load_dataset
from lm_eval_medinj.judge.backends import TransformersJudge, render_chat
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.items import JudgeItem, item_from_row
from lm_eval_medinj.judge.prompt import JudgePrompt, load_prompt
from lm_eval_medinj.judge.scoring import score_items
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol.paper import allowed_token_ids

REPO = Path(__file__).resolve().parents[1]
OEQ_NEW_TOKENS = 512  # the OEQ tasks' max_gen_toks, the authors' max_new_tokens


@dataclass(frozen=True)
class Workload:
    """A test set: its lm-eval tasks and its files (label, task type, provenances for ``load_dataset``)."""

    name: str
    benchmark: str
    gen_tasks: tuple[str, ...]
    choice_tasks: tuple[str, ...]
    oeq_task: str
    mcq_files: tuple[tuple[str, str, tuple[str, ...] | None], ...]
    oeq_file: tuple[str, str, tuple[str, ...] | None]


WORKLOADS = {
    "medinjection": Workload(
        "medinjection",
        "medinjection",
        ("medinj_mcq_gen",),
        ("medinj_mcq",),
        "medinj_oeq_native",
        (
            ("Native/mcqu", "mcqu", ("native",)),
            ("Translated/mcqu", "mcqu", ("translated",)),
            ("Native/mcq", "mcq", ("native",)),
        ),
        ("Native/oeq", "oeq", ("native",)),
    ),  # fmt: skip
    "mediqal": Workload(
        "mediqal",
        "mediqal",
        ("medinj_mediqal_gen",),
        ("medinj_mediqal_mcqu", "medinj_mediqal_mcqm"),
        "medinj_mediqal_oeq",
        (("mcqu", "mcqu", None), ("mcqm", "mcq", None)),
        ("oeq", "oeq", None),
    ),
}


# ---------------------------------------------------------------- measuring


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class StepMeter:
    """Wall time of a block, with the peak GPU memory allocated (reset first) or, on a CPU, the peak RSS."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds = 0.0
        self.peak_rss = 0
        self.peak_gpu: int | None = None
        self.at_start = 0

    def __enter__(self) -> StepMeter:
        synchronize(self.device)
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            self.at_start = torch.cuda.memory_allocated()
        self.peak_rss = psutil.Process().memory_info().rss
        if not self.device.startswith("cuda"):
            self.at_start = self.peak_rss
        self._running = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self._start = time.perf_counter()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while self._running:
            self.peak_rss = max(self.peak_rss, process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start
        self._running = False
        self._sampler.join()
        if self.device.startswith("cuda"):
            self.peak_gpu = torch.cuda.max_memory_allocated()

    def memory(self) -> dict[str, Any]:
        """Peak and at-start memory (the difference is what the step itself allocated)."""
        if self.peak_gpu is not None:
            peak, measure = self.peak_gpu, "torch.cuda.max_memory_allocated"
        else:
            peak, measure = self.peak_rss, "peak RSS of the process (CPU)"
        at_start = self.at_start / 2**20
        return {"peak_memory_mib": peak / 2**20, "memory_at_start_mib": at_start, "memory_measure": measure}


class TimedMedinjHFLM(MedinjHFLM):
    """``medinj-hf`` that adds up the seconds spent serving lm-eval's requests (the model's share of a run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_seconds = 0.0
        self._depth = 0

    def _timed(self, method: Callable[..., Any], *args: Any) -> Any:
        self._depth += 1
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            self._depth -= 1
            if self._depth == 0:
                synchronize(str(self.device))
                self.model_seconds += time.perf_counter() - start

    def loglikelihood(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return self._timed(super().loglikelihood, requests, disable_tqdm)

    def generate_until(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return self._timed(super().generate_until, requests, disable_tqdm)

    def generate_until_constrained(self, requests: Any, disable_tqdm: bool = False) -> Any:
        return self._timed(super().generate_until_constrained, requests, disable_tqdm)


class PreloadedJudge(TransformersJudge):
    """``TransformersJudge`` over a model already in memory; ``p_equivalent``, what is measured, is its own."""

    def __init__(self, model: Any, tokenizer: Any, judge_id: str) -> None:
        self.judge_id = judge_id
        self.device = str(model.device)
        self.tokenizer = copy.deepcopy(tokenizer)
        self.tokenizer.padding_side = "left"
        self.model = model


def entry(
    workload: str,
    step: str,
    items_full: int,
    items_measured: int,
    meter: StepMeter,
    layer_scale: float,
    seconds: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One step's figures: measured, then per item, then for the whole step at full depth.

    ``seconds`` (the whole step) defaults to the cost per item measured x items x ``layer_scale``."""
    per_item = meter.seconds / items_measured
    if seconds is None:
        seconds = per_item * items_full * layer_scale
    return {
        "workload": workload,
        "step": step,
        "items": items_full,
        "items_measured": items_measured,
        "seconds_measured": meter.seconds,
        "seconds_per_item_measured": per_item,
        "layer_scale": layer_scale,
        "seconds": seconds,
        "items_per_s": items_full / seconds,
        "extrapolated": items_measured != items_full or layer_scale != 1,
        **meter.memory(),
        **extra,
    }


@dataclass(frozen=True)
class Measured:
    """One lm-eval run: wall seconds, the seconds inside the model's request methods, items."""

    seconds: float
    model_seconds: float
    items: int


def outside_model_cost(measured: Measured, probe: Measured | None) -> tuple[float, float]:
    """lm-eval's work outside the model as (fixed seconds, seconds per item).

    A whole step measured: all of it is the step's own. A slice: the slice and a probe of one item
    per task give the line through both (reading every file, ``add_env_info`` and the like are
    fixed; rendering requests, scoring and logging are per item), clamped at zero."""
    outside = measured.seconds - measured.model_seconds
    if probe is None or measured.items <= probe.items:
        return outside, 0.0
    per_item = max((outside - (probe.seconds - probe.model_seconds)) / (measured.items - probe.items), 0.0)
    return max(outside - per_item * measured.items, 0.0), per_item


# ---------------------------------------------------------------- the authors' loops (batch size 1)


class AuthorsMask(LogitsProcessor):
    """The authors' vocabulary mask as their loop builds it, a new mask added at every step (timed as theirs;
    the ids are :func:`lm_eval_medinj.protocol.paper.allowed_token_ids`, checked against their list in tests)."""

    def __init__(self, allowed: list[int]) -> None:
        self.allowed = allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, -float("inf"))
        mask[:, self.allowed] = 0
        return scores + mask


def authors_generate(
    model: Any, tokenizer: Any, turns: list[dict[str, str]], max_new_tokens: int, processors: list[Any]
) -> str:
    """One record the authors' way: the turns through the chat template, one greedy ``generate``."""
    inputs = tokenizer.apply_chat_template(turns, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(
            input_ids=inputs["input_ids"].to(model.device),
            attention_mask=inputs["attention_mask"].to(model.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            logits_processor=LogitsProcessorList(processors),
        )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def prompt_turns(doc: dict[str, Any]) -> list[dict[str, str]]:
    """What the model is asked: the record's own turns, or the canonical prompt as one user turn."""
    if doc["prompt_source"] == "conversation":
        return doc_prompt_turns(doc)
    return [{"role": "user", "content": doc_to_text(doc)}]


def authors_mcq_answer(model: Any, tokenizer: Any, doc: dict[str, Any]) -> str:
    multi = doc["task"] == "mcq"
    budget = 2 * len(doc["option_letters"]) if multi else 1
    mask = AuthorsMask(allowed_token_ids(tokenizer, doc["option_letters"]))
    return authors_generate(model, tokenizer, prompt_turns(doc), budget, [mask])


def authors_judge_answer(model: Any, tokenizer: Any, prompt: JudgePrompt, item: JudgeItem) -> str:
    return authors_generate(model, tokenizer, prompt.messages(item.question, item.reference, item.candidate), 1, [])


# ---------------------------------------------------------------- one run


@dataclass
class Run:
    """Everything the steps share."""

    args: argparse.Namespace
    tokenizer: Any
    data_dirs: dict[str, Path]
    counts: dict[str, dict[str, int]]
    encoder_dir: Path
    encoder_layer: int
    oeq_new_tokens: int
    steps: dict[str, dict[str, Any]]
    answers: dict[str, list[JudgeItem]]
    stand_in_ids: list[int]
    managers: dict[str, Any]

    def manager(self, workload: Workload) -> Any:
        """The workload's lm-eval task manager (this package's tasks only), built once, untimed."""
        from lm_eval.tasks import TaskManager

        if workload.name not in self.managers:
            self.managers[workload.name] = TaskManager(
                include_path=str(tasks_path()), include_defaults=False, metadata=metadata(self, workload)
            )
        return self.managers[workload.name]

    def record(self, row: dict[str, Any]) -> None:
        """Keep a step's entry, and write the steps so far, so a run stopped later loses none of them."""
        self.steps[f"{row['workload']}/{row['step']}"] = row
        partial = {"partial": True, "steps": self.steps}
        Path(self.args.out).write_text(json.dumps(partial, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        print(
            f"[full_row] {row['workload']}/{row['step']}: {row['items_measured']} items in "
            f"{row['seconds_measured']:.2f} s -> {row['seconds']:.1f} s for {row['items']}",
            flush=True,
        )


def docs(run: Run, workload: Workload, file: tuple[str, str, tuple[str, ...] | None]) -> list[dict[str, Any]]:
    """The test documents of one file, as the tasks read them."""
    _, task, provenances = file
    dataset = load_dataset(
        workload.benchmark, task, list(provenances) if provenances else None, data_dir=str(run.data_dirs[workload.name])
    )
    return list(dataset["test"])


def metadata(run: Run, workload: Workload) -> dict[str, Any]:
    return {
        "data_dir": str(run.data_dirs[workload.name]),
        "bertscore_model": str(run.encoder_dir),
        "bertscore_layer": run.encoder_layer,
        "bertscore_rescale": False,
        "bertscore_device": run.args.device,
    }


def lm_eval_run(
    run: Run,
    workload: Workload,
    lm: TimedMedinjHFLM,
    tasks: Sequence[str],
    limit: float | int | None,
    gen_kwargs: dict[str, Any] | None,
) -> tuple[dict[str, Any], StepMeter, Measured]:
    """``tasks`` through ``simple_evaluate``, as a user runs them, measured."""
    from lm_eval import simple_evaluate

    manager = run.manager(workload)
    lm.model_seconds = 0.0
    with StepMeter(run.args.device) as meter:
        results = simple_evaluate(
            model=lm,
            tasks=list(tasks),
            task_manager=manager,
            limit=limit,
            log_samples=True,
            apply_chat_template=True,
            gen_kwargs=gen_kwargs,
        )
    items = sum(len(samples) for samples in results["samples"].values())
    return results, meter, Measured(meter.seconds, lm.model_seconds, items)


def lm_eval_step(
    run: Run,
    workload: Workload,
    step: str,
    lm: TimedMedinjHFLM,
    tasks: Sequence[str],
    items_full: int,
    built: BuiltModel,
    gen_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``tasks`` run whole, or under ``--slice`` a fraction of each task (lm-eval's ``limit``) and a
    probe of one item per task; the model's time is extrapolated per item and scaled by depth,
    lm-eval's own by :func:`outside_model_cost`."""
    fraction = run.args.slice / items_full if run.args.slice and run.args.slice < items_full else None
    probe = None
    if fraction is not None:
        probe_kwargs = {**(gen_kwargs or {}), "max_gen_toks": 1} if step == "oeq_generation" else gen_kwargs
        probe = lm_eval_run(run, workload, lm, tasks, 1, probe_kwargs)[2]
    results, meter, measured = lm_eval_run(run, workload, lm, tasks, fraction, gen_kwargs)
    fixed, outside_per_item = outside_model_cost(measured, probe)
    model_seconds = measured.model_seconds / measured.items * items_full * built.layer_scale
    samples = [sample for task_samples in results["samples"].values() for sample in task_samples]
    row = entry(
        workload.name,
        step,
        items_full,
        measured.items,
        meter,
        built.layer_scale,
        seconds=model_seconds + fixed + outside_per_item * items_full,
        batch_size=lm.batch_size,
        tasks=list(tasks),
        lm_eval_limit=fraction,
        model_seconds_measured=measured.model_seconds,
        model_seconds=model_seconds,
        outside_model_fixed_seconds=fixed,
        outside_model_seconds_per_item=outside_per_item,
        probe=None if probe is None else vars(probe),
        prompt_tokens_mean=mean_tokens(run.tokenizer, [sample["arguments"][0][0] for sample in samples]),
    )
    if step == "oeq_generation":
        task_samples = results["samples"][workload.oeq_task]
        answers = [item_from_row(s, f"{workload.oeq_task}#{s['doc_id']}") for s in task_samples]
        row["answer_tokens_mean"] = mean_tokens(run.tokenizer, [item.candidate for item in answers])
        row["answers_empty_after_strip"] = sum(not item.candidate.strip() for item in answers)
        run.answers[workload.name] = [judge_candidate(run, item, i) for i, item in enumerate(answers)]
    return row


def judge_candidate(run: Run, item: JudgeItem, index: int) -> JudgeItem:
    """The item as the judge sees it: a random model's answer is one token repeated ("\\n" with tied
    embeddings), empty once stripped, so it stands in as French exam text of the generated length."""
    if item.candidate.strip():
        return item
    ids = run.stand_in_ids
    start = (index * 997) % max(len(ids) - run.oeq_new_tokens, 1)
    text = run.tokenizer.decode(ids[start : start + run.oeq_new_tokens]).strip()
    return JudgeItem(item.id, item.question, item.reference, text)


def mean_tokens(tokenizer: Any, texts: Sequence[str]) -> float:
    return sum(len(tokenizer(text, add_special_tokens=False).input_ids) for text in texts) / max(len(texts), 1)


def authors_mcq_step(run: Run, workload: Workload, built: BuiltModel) -> dict[str, Any]:
    """The authors' masked loop on the first items of each MCQ file; the whole set extrapolated per file."""
    per_file: dict[str, dict[str, Any]] = {}
    memory: list[dict[str, Any]] = []
    for file in workload.mcq_files:
        sample = docs(run, workload, file)[: run.args.authors_items]
        with StepMeter(run.args.device) as meter:
            for doc in sample:
                authors_mcq_answer(built.model, run.tokenizer, doc)
        per_file[file[0]] = {
            "items": run.counts[workload.name][file[0]],
            "items_measured": len(sample),
            "seconds_measured": meter.seconds,
            "seconds_per_item_measured": meter.seconds / len(sample),
        }
        memory.append(meter.memory())
    items = sum(f["items"] for f in per_file.values())
    measured = sum(f["items_measured"] for f in per_file.values())
    seconds_measured = sum(f["seconds_measured"] for f in per_file.values())
    seconds = sum(f["seconds_per_item_measured"] * f["items"] for f in per_file.values()) * built.layer_scale
    return {
        "workload": workload.name,
        "step": "authors_mcq",
        "items": items,
        "items_measured": measured,
        "seconds_measured": seconds_measured,
        "seconds_per_item_measured": seconds_measured / measured,
        "layer_scale": built.layer_scale,
        "seconds": seconds,
        "items_per_s": items / seconds,
        "extrapolated": True,
        "peak_memory_mib": max(m["peak_memory_mib"] for m in memory),
        "memory_measure": memory[0]["memory_measure"],
        "batch_size": 1,
        "per_file": per_file,
    }


def authors_sample_step(
    run: Run,
    workload: Workload,
    step: str,
    sample: Sequence[Any],
    answer: Callable[[Any], str],
    items_full: int,
    built: BuiltModel,
) -> dict[str, Any]:
    with StepMeter(run.args.device) as meter:
        for item in sample:
            answer(item)
    return entry(workload.name, step, items_full, len(sample), meter, built.layer_scale, batch_size=1)


def evaluated_steps(run: Run, built: BuiltModel) -> None:
    """Every step of the evaluated model, workload by workload."""
    args = run.args
    lm_args = {"tokenizer": run.tokenizer, "device": args.device}
    mcq_lm = TimedMedinjHFLM(pretrained=built.model, batch_size=args.batch_size, **lm_args)
    oeq_lm = TimedMedinjHFLM(pretrained=built.model, batch_size=args.oeq_batch_size, **lm_args)
    scaled_tokens = {"max_gen_toks": run.oeq_new_tokens} if run.oeq_new_tokens != OEQ_NEW_TOKENS else None
    warm_up(built.model, run.tokenizer)
    for name in args.workloads:
        workload = WORKLOADS[name]
        counts = run.counts[name]
        mcq_items = sum(counts[file[0]] for file in workload.mcq_files)
        oeq_items = counts[workload.oeq_file[0]]
        run.record(authors_mcq_step(run, workload, built))
        run.record(lm_eval_step(run, workload, "mcq_gen", mcq_lm, workload.gen_tasks, mcq_items, built))
        run.record(lm_eval_step(run, workload, "mcq_choice", mcq_lm, workload.choice_tasks, mcq_items, built))
        oeq_docs = docs(run, workload, workload.oeq_file)[: args.authors_oeq_items]
        run.record(
            authors_sample_step(
                run,
                workload,
                "authors_oeq",
                oeq_docs,
                lambda doc: authors_generate(built.model, run.tokenizer, prompt_turns(doc), run.oeq_new_tokens, []),
                oeq_items,
                built,
            )
        )
        oeq = lm_eval_step(
            run, workload, "oeq_generation", oeq_lm, [workload.oeq_task], oeq_items, built, scaled_tokens
        )
        oeq["new_tokens"] = run.oeq_new_tokens
        run.record(oeq)


def judge_steps(run: Run, built: BuiltModel) -> None:
    """The judge on each workload's answers, then the authors' judge loop on the first of them."""
    prompt = load_prompt()
    judge = PreloadedJudge(built.model, run.tokenizer, f"random:{built.name}")
    warm_up(built.model, run.tokenizer)
    for name in run.args.workloads:
        items = run.answers[name]
        full = run.counts[name][WORKLOADS[name].oeq_file[0]]
        with tempfile.TemporaryDirectory() as folder, StepMeter(run.args.device) as meter:
            cache = JudgementCache(Path(folder) / "judge.sqlite")
            score_items(items, judge, prompt, cache, batch_size=run.args.judge_batch_size, progress=False)
        texts = [render_chat(judge.tokenizer, prompt, item) for item in items]
        run.record(
            entry(
                name,
                "judge",
                full,
                len(items),
                meter,
                built.layer_scale,
                batch_size=run.args.judge_batch_size,
                prompt_tokens_mean=mean_tokens(run.tokenizer, texts),
                stand_in_candidates=run.steps[f"{name}/oeq_generation"]["answers_empty_after_strip"],
            )
        )
        sample = items[: run.args.authors_judge_items]
        run.record(
            authors_sample_step(
                run,
                WORKLOADS[name],
                "authors_judge",
                sample,
                lambda item: authors_judge_answer(built.model, run.tokenizer, prompt, item),
                full,
                built,
            )
        )


def warm_up(model: Any, tokenizer: Any) -> None:
    """One short forward and generate, so first-call allocations and kernel choices are not measured."""
    inputs = tokenizer("Bonjour", return_tensors="pt").to(model.device)
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=2, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    synchronize(str(model.device))


def release(built: BuiltModel) -> None:
    """Free the evaluated model before the judge is built (the judge runs in its own process in practice)."""
    built.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def write_data(sources: list[Source], args: argparse.Namespace, root: Path) -> dict[str, dict[str, int]]:
    writers = {"medinjection": write_medinjection, "mediqal": write_mediqal}
    return {name: writers[name](sources, root / name, args.scale) for name in args.workloads}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def setup_section(args: argparse.Namespace, run: Run, tokenizer_name: str, encoder_name: str) -> dict[str, Any]:
    import lm_eval
    import transformers

    cuda = args.device.startswith("cuda")
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": git_commit(),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "lm_eval": getattr(lm_eval, "__version__", None),
        },  # fmt: skip
        "dtype": args.dtype,
        "scale": args.scale,
        "toy_models": args.scale < 1,
        "slice": args.slice,
        "workloads": args.workloads,
        "tokenizer": tokenizer_name,
        "bertscore_encoder": encoder_name,
        "oeq_new_tokens": run.oeq_new_tokens,
        "batch_sizes": {"mcq": args.batch_size, "oeq": args.oeq_batch_size, "judge": args.judge_batch_size},
        "authors_sample": {
            "mcq_per_file": args.authors_items,
            "oeq": args.authors_oeq_items,
            "judge": args.authors_judge_items,
        },  # fmt: skip
        "items": run.counts,
        "items_at_full_size": {
            "medinjection": {f"{folder}/{task}": n for (folder, task), n in MEDINJECTION_TEST.items()},
            "mediqal": dict(MEDIQAL_TEST),
        },
        "items_source": SIZES_SOURCE,
        "texts": "FrenchMedMCQA questions and options recycled (bench/full_row_data.py: lengths assumed there)",
        "memory": "torch.cuda.max_memory_allocated, reset per step"
        if cuda
        else "peak RSS per step (CPU), model included",
        "extrapolation": "seconds = measured seconds per item x items x layer_scale (linear in items and layers)",
        "row": "minutes per Table-1 row = mcq_gen + oeq_generation + judge (choice scoring is not in the row)",
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every step of ``args.workloads``; the report's ``setup`` and ``steps`` (ratios and rows not yet added)."""
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.out = args.out or str(REPO / "bench" / f"full_row_{args.device.split(':')[0]}.json")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    dtype = getattr(torch, args.dtype)
    tiny = args.scale < 1
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    tokenizer, tokenizer_name = load_tokenizer(args.tokenizer)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data_dir) if args.data_dir else Path(scratch) / "data"
        sources = read_sources(Path(args.frenchmedmcqa_dir))
        counts = write_data(sources, args, root)
        texts = [source.question for source in sources]
        encoder_dir, encoder_layer, encoder_name = bertscore_encoder(Path(scratch) / "encoder", texts, tiny)
        run = Run(
            args=args,
            tokenizer=tokenizer,
            data_dirs={name: root / name for name in args.workloads},
            counts=counts,
            encoder_dir=encoder_dir,
            encoder_layer=encoder_layer,
            oeq_new_tokens=OEQ_NEW_TOKENS if args.scale == 1 else max(4, math.ceil(OEQ_NEW_TOKENS * args.scale)),
            steps={},
            answers={},
            stand_in_ids=tokenizer(corpus_text(sources), add_special_tokens=False).input_ids,
            managers={},
        )
        evaluated = evaluated_model(tokenizer, args.device, dtype, tiny, args.layers)
        models = {"evaluated": describe(evaluated)}
        evaluated_steps(run, evaluated)
        release(evaluated)
        judge = judge_model(tokenizer, args.device, dtype, tiny, args.judge_layers)
        models["judge"] = describe(judge)
        judge_steps(run, judge)
    return {"setup": {**setup_section(args, run, tokenizer_name, encoder_name), "models": models}, "steps": run.steps}


def describe(built: BuiltModel) -> dict[str, Any]:
    return {
        "name": built.name,
        "layers": built.layers,
        "full_layers": built.full_layers,
        "parameters": parameter_count(built.model),
        "shape": built.config,
        "weights": "random (seed 0)",
    }
