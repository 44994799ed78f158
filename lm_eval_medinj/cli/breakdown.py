"""``medinj breakdown``: scores by question type, subject or provenance, from lm-eval's logged samples."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import InputError, run_cli
from lm_eval_medinj.files import write_json_atomic


def run(argv: Sequence[str], prog: str = "medinj breakdown") -> None:
    from lm_eval_medinj.study.breakdown import BreakdownError, breakdown_folder, to_json, to_markdown

    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("output_path", type=Path, help="an lm-eval --output_path run with --log_samples")
    parser.add_argument(
        "--by", action="append", default=None,
        help="document field, repeatable (default: question_type); e.g. medical_subject, provenance, origin",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the tables as JSON to this file")
    args = parser.parse_args(argv)
    try:
        tables = breakdown_folder(args.output_path, args.by or ["question_type"])
    except BreakdownError as error:
        raise InputError(str(error)) from error
    print(to_markdown(tables))
    if args.json is not None:
        write_json_atomic(args.json, to_json(tables))


def main(argv: Sequence[str] | None = None, prog: str = "medinj breakdown") -> None:
    run_cli(lambda args: run(args, prog), argv, prog=prog)
