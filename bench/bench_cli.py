"""Command-line arguments shared by the MCQ benchmarks (run as ``python bench/<script>.py``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def benchmark_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """``--render``, ``--data_dir``, ``--limit``, ``--batch_size`` and ``--out``; scripts add their own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render", metavar="RESULTS_JSON", help="print the markdown table of a results file")
    parser.add_argument("--data_dir")
    parser.add_argument("--limit", type=int, default=100, help="questions per format (MCQU, MCQ)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--out", default=default_out)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model switches of ``constrained_bench.load_model``: SmolLM2 by default, or random weights of a shape."""
    parser.add_argument("--random_model", choices=["qwen3-4b"], help="random weights of this shape instead of SmolLM2")
    parser.add_argument(
        "--tokenizer", help="tokenizer of --random_model: a folder or Hub id (default: SmolLM2's, from its GGUF)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--apply_chat_template", action="store_true", help="prompts in the model's chat template (lm-eval's flag)"
    )


def parse_or_render(
    parser: argparse.ArgumentParser, render: Callable[[dict[str, Any]], str]
) -> argparse.Namespace | None:
    """The parsed arguments; None once ``--render``'s results file has been printed as a table."""
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return None
    if not args.data_dir:
        parser.error("--data_dir is required")
    if getattr(args, "tokenizer", None) and not args.random_model:
        parser.error("--tokenizer is for --random_model (SmolLM2 brings its own)")
    return args
