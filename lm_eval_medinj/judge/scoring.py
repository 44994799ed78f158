"""Cached, batched scoring of items, and the per-item and aggregate files beside lm-eval's samples."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lm_eval_medinj.judge.backends import JudgeBackend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.items import JudgeItem, read_items
from lm_eval_medinj.judge.prompt import JudgePrompt
from lm_eval_medinj.judge.verbosity import length_controlled, relative_length, words


@dataclass(frozen=True)
class ScoreRun:
    """P(equivalent) per item, and how many came from the cache or were scored now."""

    p: np.ndarray
    cached: int
    scored: int


def score_items(
    items: Sequence[JudgeItem],
    backend: JudgeBackend,
    prompt: JudgePrompt,
    cache: JudgementCache,
    batch_size: int = 8,
    progress: bool = True,
    poll_s: float = 0.5,
) -> ScoreRun:
    """Score what the cache lacks, one committed batch at a time; duplicates are scored once.

    Each batch is claimed in the cache first, so processes sharing the cache never score the same key
    twice: keys another process is scoring are waited for (polled every ``poll_s`` seconds) and read
    from the cache once it has stored them."""
    keys = [item.key(backend.judge_id, prompt.prompt_id) for item in items]
    known = cache.get_many(keys)
    todo: dict[str, JudgeItem] = {}
    for key, item in zip(keys, items, strict=True):
        if key not in known:
            todo.setdefault(key, item)
    scored = 0
    with tqdm(total=len(todo), desc=f"judge {backend.judge_id}", unit="item", disable=not progress) as bar:
        while todo:
            mine, stored = cache.claim(list(todo), batch_size)
            for key in stored.keys() & todo.keys():
                del todo[key]
            known.update(stored)
            bar.update(len(stored))
            if not mine:
                if todo:  # all left are being scored by other processes
                    time.sleep(poll_s)
                continue
            try:
                probabilities = backend.p_equivalent([todo[key] for key in mine], prompt)
            except BaseException:
                cache.release(mine)
                raise
            rows = [(key, float(p)) for key, p in zip(mine, probabilities, strict=True)]
            known.update(cache.store(backend.judge_id, prompt.prompt_id, rows))
            for key in mine:
                del todo[key]
            scored += len(mine)
            bar.update(len(mine))
    unique = len(set(keys))
    return ScoreRun(np.array([known[key] for key in keys], dtype=float), unique - scored, scored)


def slug(judge_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", judge_id).strip("-")


def output_paths(samples: Path, judge_id: str, output_dir: Path | None = None) -> tuple[Path, Path]:
    """Per-item JSONL and aggregate JSON named after the samples file, in its folder by default."""
    stem = samples.stem.removeprefix("samples_")
    folder = output_dir or samples.parent
    return (
        folder / f"judge_{slug(judge_id)}_{stem}.jsonl",
        folder / f"judge_results_{slug(judge_id)}_{stem}.json",
    )


def summarise(
    items: Sequence[JudgeItem],
    p: np.ndarray,
    judge_id: str,
    prompt: JudgePrompt,
    calibration: Calibration | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-item rows and the aggregate: mean verdict, mean (calibrated) P, length-controlled score."""
    calibrated = calibration.apply(p) if calibration is not None else None
    length = relative_length(items)
    rows = []
    for i, item in enumerate(items):
        row: dict[str, Any] = {
            **asdict(item),
            "p_equivalent": float(p[i]),
            "verdict": int(p[i] >= 0.5),
            "candidate_words": words(item.candidate),
            "relative_length": float(length[i]),
        }
        if calibrated is not None:
            row["p_calibrated"] = float(calibrated[i])
        rows.append(row)
    controlled = length_controlled(p, length, calibration.length_coef if calibration else None)
    aggregate: dict[str, Any] = {
        "judge": judge_id,
        "prompt": prompt.prompt_id,
        "n": len(items),
        "mean_verdict": float((p >= 0.5).mean()),
        "mean_p_equivalent": float(p.mean()),
        "mean_p_calibrated": float(calibrated.mean()) if calibrated is not None else None,
        "calibration": calibration.method if calibration else None,
        "length_controlled": asdict(controlled),
    }
    return rows, aggregate


def score_file(
    samples: Path,
    backend: JudgeBackend,
    prompt: JudgePrompt,
    cache: JudgementCache,
    calibration: Calibration | None = None,
    batch_size: int = 8,
    output_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score one samples (or plain JSONL) file and write its per-item and aggregate files."""
    items = read_items(samples)
    run = score_items(items, backend, prompt, cache, batch_size, progress)
    rows, aggregate = summarise(items, run.p, backend.judge_id, prompt, calibration)
    aggregate |= {"samples": str(samples), "cached": run.cached, "scored": run.scored}
    per_item, results = output_paths(samples, backend.judge_id, output_dir)
    per_item.parent.mkdir(parents=True, exist_ok=True)
    with per_item.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    results.write_text(json.dumps(aggregate, indent=2, ensure_ascii=False), encoding="utf-8")
    return aggregate


def find_samples(paths: Sequence[Path], pattern: str = "samples_*oeq*.jsonl") -> list[Path]:
    """Files given, plus lm-eval samples files matching ``pattern`` below folders given."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob(pattern)) if path.is_dir() else [path]
    if not found:
        raise FileNotFoundError(f"no file matching {pattern!r} in {', '.join(map(str, paths))}")
    return found
