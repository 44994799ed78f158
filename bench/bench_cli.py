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
    return args
