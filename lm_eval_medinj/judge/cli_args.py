"""Command-line options shared by ``judge/score.py`` and ``judge/meta_eval.py``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lm_eval_medinj.judge.backends import BackendOptions
from lm_eval_medinj.judge.prompt import DEFAULT_PROMPT

DEFAULT_CACHE = Path(os.environ.get("MEDINJ_JUDGE_CACHE", Path.home() / ".cache" / "medinj" / "judge.sqlite"))


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
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    backend = parser.add_argument_group("backends (hf:MODEL, vllm:MODEL, openai:MODEL@BASE_URL)")
    backend.add_argument("--device", help="hf: torch device (default cuda when available)")
    backend.add_argument("--dtype", help="hf: torch dtype name (default bfloat16 on cuda, float32 on cpu)")
    backend.add_argument("--api", choices=("chat", "completions"), default="chat", help="openai: endpoint")
    backend.add_argument("--top-logprobs", type=int, default=20, help="openai: top-k log-probabilities asked")
    backend.add_argument("--tokenizer", help="openai completions: tokenizer whose chat template renders the prompt")
    backend.add_argument("--concurrency", type=int, default=8, help="openai: parallel requests")
    backend.add_argument("--vllm-kwargs", type=json.loads, default={}, help="vllm: JSON of LLM(...) arguments")


def backend_options(args: argparse.Namespace) -> BackendOptions:
    return BackendOptions(
        device=args.device,
        dtype=args.dtype,
        api=args.api,
        top_logprobs=args.top_logprobs,
        tokenizer=args.tokenizer,
        concurrency=args.concurrency,
        vllm_kwargs=args.vllm_kwargs,
    )
