"""The ``medinj`` command: ``tasks-path``, ``eval`` (lm-eval's CLI with this package), ``demo`` and
``breakdown`` (scores by question type, subject or provenance, from logged samples)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import InputError, run_cli
from lm_eval_medinj.eval_cli import lm_eval_argv, run_lm_eval  # noqa: F401 (lm_eval_argv: part of this API)
from lm_eval_medinj.paths import tasks_path


def print_breakdown(output_path: Path, fields: Sequence[str], json_path: Path | None) -> None:
    """Print one Markdown table per task and field; optionally write them as JSON."""
    from lm_eval_medinj.breakdown import BreakdownError, breakdown_folder, to_json, to_markdown

    try:
        tables = breakdown_folder(output_path, fields)
    except BreakdownError as error:
        raise InputError(str(error)) from error
    print(to_markdown(tables))
    if json_path is not None:
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(to_json(tables), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(json_path)


def write_study_report(args: argparse.Namespace) -> None:
    """``medinj report``: read the runs, compare them, write the report folder."""
    try:
        from lm_eval_medinj.study.exclude import read_flagged
        from lm_eval_medinj.study.render import write_report
        from lm_eval_medinj.study.report import ReportOptions, build_report
        from lm_eval_medinj.study.runs import StudyError, load_run, sample_reader
    except ImportError as missing:
        raise SystemExit(
            f"medinj report needs SciPy, matplotlib, threadpoolctl and pydantic ({missing}): "
            "pip install 'lm-eval-medinj[study]'"
        ) from None

    try:
        exclude = read_flagged(args.exclude) if args.exclude is not None else None  # checked before the runs are read
        runs, reader = [], sample_reader()  # one reader: each question's document parsed once, not once per run
        for spec in args.model:
            label, _, folder = spec.rpartition("=")
            runs.append(load_run(label or Path(folder).name, Path(folder), reader))
        pairs = []
        for pair in args.compare:
            a, sep, b = pair.partition(":")
            if not sep:
                raise StudyError(f"--compare {pair!r}: expected A:B")
            pairs.append((a, b))
        options = ReportOptions(
            args.baseline, tuple(pairs), args.allow_mismatch, args.bootstrap, args.seed, exclude=exclude
        )
        written = write_report(build_report(runs, options), args.out)
    except StudyError as error:
        raise InputError(str(error)) from error
    print("\n".join(str(path) for path in written))


def main(argv: Sequence[str] | None = None) -> None:
    """``medinj``: a data or usage error is one line, exit status 2 (``--debug`` or ``MEDINJ_DEBUG=1``:
    the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    run_cli(_main, argv, prog=f"medinj {command}" if command else "medinj")


def _main(argv: list[str]) -> None:
    if argv and argv[0] == "eval":
        run_lm_eval(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="medinj", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tasks-path", help="print the folder to pass to lm-eval --include_path")
    commands.add_parser("eval", help="lm-eval's CLI with this package's tasks and models; all flags pass through")
    demo = commands.add_parser("demo", help="evaluate SmolLM2-135M-Instruct offline on the shipped demo questions")
    demo.add_argument("--output_path", default="out/demo", help="where lm-eval writes results and samples")
    demo.add_argument("--limit", type=int, default=None, help="questions per task (default: all)")
    demo.add_argument("--batch_size", default="8")
    split = commands.add_parser("breakdown", help="scores by a document field, from lm-eval's logged samples")
    split.add_argument("output_path", type=Path, help="an lm-eval --output_path run with --log_samples")
    split.add_argument(
        "--by", action="append", default=None,
        help="document field, repeatable (default: question_type); e.g. medical_subject, provenance, origin",
    )  # fmt: skip
    split.add_argument("--json", type=Path, help="also write the tables as JSON to this file")
    report = commands.add_parser("report", help="Table 1 with CIs, paired tests and breakdowns over several runs")
    report.add_argument(
        "--model", action="append", required=True, metavar="LABEL=FOLDER",
        help="an lm-eval --output_path run with --log_samples (judge/score.py outputs in it are read too); "
        "repeat per model; without LABEL= the label is the folder's name; several runs under one label are "
        "that model's training seeds (mean over seeds, seed-aware intervals)",
    )  # fmt: skip
    report.add_argument("--baseline", required=True, help="the label every other model is compared with")
    report.add_argument("--compare", action="append", default=[], metavar="A:B", help="an extra pair to compare")
    report.add_argument("--allow-mismatch", action="store_true", help="compare different questions or protocols")
    report.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument(
        "--exclude", type=Path, metavar="OVERLAP_JSON",
        help="medinj overlap's overlap.json: adds Table 1 on the questions no training example overlaps, "
        "and full minus clean per model",
    )  # fmt: skip
    report.add_argument("--out", type=Path, required=True, help="folder for report.md, table1.csv, report.json, PNGs")
    args = parser.parse_args(argv)
    if args.command == "tasks-path":
        print(tasks_path())
    elif args.command == "breakdown":
        print_breakdown(args.output_path, args.by or ["question_type"], args.json)
    elif args.command == "report":
        write_study_report(args)
    elif args.command == "demo":
        from lm_eval_medinj.demo import run_demo

        run_demo(output_path=args.output_path, limit=args.limit, batch_size=args.batch_size)


if __name__ == "__main__":
    main()
