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

from lm_eval_medinj.files import write_text_atomic
from lm_eval_medinj.judge.backends import JudgeBackend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.failures import ItemFailure, JudgeError, JudgeFailedError, JudgeResponseError
from lm_eval_medinj.judge.items import JudgeItem, item_name, read_items
from lm_eval_medinj.judge.prompt import JudgePrompt
from lm_eval_medinj.judge.verbosity import length_controlled, relative_length, words

# Items in a row that fail after their retries before a run stops (the judge is down, not flaky).
STOP_AFTER_FAILURES_IN_A_ROW = 10


@dataclass(frozen=True)
class ScoreRun:
    """P(equivalent) per item (NaN where the item failed), how many came from the cache or were
    scored now, and the items left unjudged."""

    p: np.ndarray
    cached: int
    scored: int
    failures: tuple[ItemFailure, ...] = ()

    def complete_p(self) -> np.ndarray:
        """``p`` when every item was judged; else :class:`JudgeFailedError` (one line)."""
        if self.failures:
            raise JudgeFailedError(self.failures)
        return self.p


def score_items(
    items: Sequence[JudgeItem],
    backend: JudgeBackend,
    prompt: JudgePrompt,
    cache: JudgementCache,
    batch_size: int = 8,
    progress: bool = True,
    poll_s: float = 0.5,
    names: Sequence[str] | None = None,
) -> ScoreRun:
    """Score what the cache lacks; each judgement is stored the moment it is made; duplicates are
    scored once.

    Up to ``batch_size`` keys are claimed in the cache at a time, so processes sharing the cache never
    score the same key twice: keys another process is scoring are waited for (polled every ``poll_s``
    seconds) and read from the cache once it has stored them. An item the backend cannot judge
    (:class:`ItemNotJudged`) is released, listed in ``failures`` and the run goes on; after
    :data:`STOP_AFTER_FAILURES_IN_A_ROW` of them in a row it stops (:class:`JudgeFailedError`).
    An answer that is not a judgement stops the run at once (:class:`JudgeResponseError`, naming the
    item as ``names`` does: default, its id)."""
    names = list(names) if names is not None else [f"item {item.id!r}" for item in items]
    keys = [item.key(backend.judge_id, prompt.prompt_id) for item in items]
    known = cache.get_many(keys)
    todo: dict[str, int] = {}  # key -> position of its first item
    for position, key in enumerate(keys):
        if key not in known:
            todo.setdefault(key, position)
    first = dict(todo)
    failed: dict[str, ItemFailure] = {}
    scored = in_a_row = 0
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
            pending = set(mine)
            judgements = backend.judge_each([items[todo[key]] for key in mine], prompt)
            try:
                for index, judgement in judgements:
                    key = mine[index]
                    name = names[todo[key]]
                    if isinstance(judgement, JudgeResponseError):
                        raise JudgeResponseError(f"{name}: {judgement}")
                    pending.discard(key)
                    del todo[key]
                    bar.update(1)
                    if isinstance(judgement, JudgeError):
                        cache.release([key])
                        failed[key] = ItemFailure(name, str(judgement))
                        in_a_row += 1
                        if in_a_row >= STOP_AFTER_FAILURES_IN_A_ROW:
                            raise JudgeFailedError(list(failed.values()), f", {in_a_row} in a row: stopped")
                        continue
                    known.update(cache.store(backend.judge_id, prompt.prompt_id, [(key, float(judgement))]))
                    scored += 1
                    in_a_row = 0
            finally:
                judgements.close()  # a backend stops its requests in flight
                if pending:  # stopped early: other processes (and re-runs) may claim these again
                    cache.release(sorted(pending))
    unique = len(set(keys))
    p = np.array([known.get(key, np.nan) for key in keys], dtype=float)
    failures = tuple(failed[key] for key in sorted(failed, key=first.__getitem__))  # in input order
    return ScoreRun(p, unique - scored - len(failed), scored, failures)


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


@dataclass(frozen=True)
class ScoredFile:
    """The aggregate of one input (``None`` when items failed, and nothing was written) and its failures."""

    samples: Path
    aggregate: dict[str, Any] | None
    failures: tuple[ItemFailure, ...]


def score_file(
    samples: Path,
    backend: JudgeBackend,
    prompt: JudgePrompt,
    cache: JudgementCache,
    calibration: Calibration | None = None,
    batch_size: int = 8,
    output_dir: Path | None = None,
    progress: bool = True,
) -> ScoredFile:
    """Score one samples (or plain JSONL) file and write its per-item and aggregate files.

    Both files are written only when every item is judged: never an aggregate over part of the items
    that reads like the whole (the judged items are in the cache; a re-run completes the files)."""
    items = read_items(samples)
    names = [item_name(samples, i, item) for i, item in enumerate(items)]
    run = score_items(items, backend, prompt, cache, batch_size, progress, names=names)
    if run.failures:
        return ScoredFile(samples, None, run.failures)
    rows, aggregate = summarise(items, run.p, backend.judge_id, prompt, calibration)
    aggregate |= {"samples": str(samples), "cached": run.cached, "scored": run.scored}
    per_item, results = output_paths(samples, backend.judge_id, output_dir)
    lines = (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
    write_text_atomic(per_item, "".join(lines))
    write_text_atomic(results, json.dumps(aggregate, indent=2, ensure_ascii=False, allow_nan=False))
    return ScoredFile(samples, aggregate, ())


def find_samples(paths: Sequence[Path], pattern: str = "samples_*oeq*.jsonl") -> list[Path]:
    """Files given, plus lm-eval samples files matching ``pattern`` below folders given."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob(pattern)) if path.is_dir() else [path]
    if not found:
        raise FileNotFoundError(f"no file matching {pattern!r} in {', '.join(map(str, paths))}")
    return found
