"""Command-line options shared by ``judge/score.py`` and ``judge/meta_eval.py``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.judge.backends import BackendOptions
from lm_eval_medinj.judge.prompt import DEFAULT_PROMPT

DEFAULT_CACHE = Path(os.environ.get("MEDINJ_JUDGE_CACHE", Path.home() / ".cache" / "medinj" / "judge.sqlite"))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number above 0")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 0 or more")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return value


def check_folder(path: Path | None, flag: str) -> None:
    """A folder to write into may not exist yet, but it may not be a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: a file, not a folder")


def add_judge_args(parser: argparse.ArgumentParser) -> None:
    """Prompt, cache, batching and backend options."""
    parser.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        help=f"shipped prompt name (paper, v1; default {DEFAULT_PROMPT}) or a prompt file",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="SQLite cache (default $MEDINJ_JUDGE_CACHE or ~/.cache/medinj/judge.sqlite)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="items per claim and per hf/vllm batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    backend = parser.add_argument_group("backends (hf:MODEL, vllm:MODEL, openai:MODEL@BASE_URL)")
    backend.add_argument("--device", help="hf: torch device (default cuda when available)")
    backend.add_argument("--dtype", help="hf: torch dtype name (default bfloat16 on cuda, float32 on cpu)")
    backend.add_argument("--api", choices=("chat", "completions"), default="chat", help="openai: endpoint")
    backend.add_argument("--top-logprobs", type=int, default=20, help="openai: top-k log-probabilities asked")
    backend.add_argument("--tokenizer", help="openai completions: tokenizer whose chat template renders the prompt")
    backend.add_argument("--concurrency", type=positive_int, default=8, help="openai: parallel requests")
    backend.add_argument(
        "--timeout",
        type=positive_float,
        default=120.0,
        help="openai: seconds to connect, and of silence while an answer is awaited, per attempt (default 120)",
    )
    backend.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=5,
        help="openai: retries of a request after HTTP 408/429/5xx, a connection error or a timeout, with "
        "exponential backoff and jitter (default 5); an item still failing is listed and the run exits 2",
    )
    backend.add_argument("--vllm-kwargs", type=json.loads, default={}, help="vllm: JSON of LLM(...) arguments")


def backend_options(args: argparse.Namespace) -> BackendOptions:
    return BackendOptions(
        device=args.device,
        dtype=args.dtype,
        api=args.api,
        top_logprobs=args.top_logprobs,
        tokenizer=args.tokenizer,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        vllm_kwargs=args.vllm_kwargs,
    )
