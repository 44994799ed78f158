"""``medinj report``: Table 1 with CIs, paired tests and breakdowns over several lm-eval runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import InputError, run_cli


def _resamples(value: str) -> int:
    """A number of bootstrap resamples: an integer of at least 100 (fewer gives no usable 95% interval)."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if count < 100:
        raise argparse.ArgumentTypeError(f"at least 100 resamples, got {count}")
    return count


def _model(spec: str) -> tuple[str, Path]:
    """``LABEL=FOLDER`` split at its first ``=`` (a folder may hold ``=``, as ``lr=1e-4``), or ``FOLDER``
    labelled by its name (also when the whole spec names an existing folder)."""
    label, sep, folder = spec.partition("=")
    if not sep or Path(spec).is_dir():
        return Path(spec).name, Path(spec)
    if not label.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER or FOLDER, got {spec!r}")
    return label.strip(), Path(folder)


def parser(prog: str) -> argparse.ArgumentParser:
    report = argparse.ArgumentParser(prog=prog, description=__doc__)
    report.add_argument(
        "--model", action="append", required=True, type=_model, metavar="LABEL=FOLDER",
        help="an lm-eval --output_path run with --log_samples (medinj judge outputs in it are read too); "
        "repeat per model; without LABEL= the label is the folder's name; several runs under one label are "
        "that model's training seeds (mean over seeds, seed-aware intervals)",
    )  # fmt: skip
    report.add_argument("--baseline", required=True, help="the label every other model is compared with")
    report.add_argument("--compare", action="append", default=[], metavar="A:B", help="an extra pair to compare")
    report.add_argument("--allow-mismatch", action="store_true", help="compare different questions or protocols")
    report.add_argument("--bootstrap", type=_resamples, default=10_000, help="bootstrap resamples (default 10000)")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument(
        "--exclude", type=Path, metavar="OVERLAP_JSON",
        help="medinj overlap's overlap.json: adds Table 1 on the questions no training example overlaps, "
        "and full minus clean per model",
    )  # fmt: skip
    report.add_argument(
        "--human", type=Path, metavar="ANNOTATION_FOLDER",
        help="a medinj annotate folder: adds each model's mean expert rating on its rated answers, and the "
        "judge-human correlation on them",
    )  # fmt: skip
    report.add_argument("--out", type=Path, required=True, help="folder for report.md, table1.csv, report.json, PNGs")
    return report


def run(argv: Sequence[str], prog: str = "medinj report") -> None:
    """Read the runs, compare them, write the report folder."""
    args = parser(prog).parse_args(argv)
    try:
        from lm_eval_medinj.study.exclude import read_flagged
        from lm_eval_medinj.study.human import read_annotations
        from lm_eval_medinj.study.render import write_report
        from lm_eval_medinj.study.report import ReportOptions, build_report
        from lm_eval_medinj.study.runs import StudyError, load_run, sample_reader
    except ImportError as missing:
        raise SystemExit(
            f"medinj report needs SciPy, matplotlib, threadpoolctl and pydantic ({missing}): "
            "pip install 'lm-eval-medinj[study]'"
        ) from None

    try:
        # the --exclude and --human files are checked before the runs are read
        exclude = read_flagged(args.exclude) if args.exclude is not None else None
        human = read_annotations(args.human) if args.human is not None else None
        runs, reader = [], sample_reader()  # one reader: each question's document parsed once, not once per run
        for label, folder in args.model:
            runs.append(load_run(label, folder, reader))
        pairs = []
        for pair in args.compare:
            a, sep, b = pair.partition(":")
            if not sep:
                raise StudyError(f"--compare {pair!r}: expected A:B")
            pairs.append((a, b))
        options = ReportOptions(
            args.baseline, tuple(pairs), args.allow_mismatch, args.bootstrap, args.seed, exclude=exclude,
            human=human,
        )  # fmt: skip
        written = write_report(build_report(runs, options), args.out)
    except StudyError as error:
        raise InputError(str(error)) from error
    print("\n".join(str(path) for path in written))


def main(argv: Sequence[str] | None = None, prog: str = "medinj report") -> None:
    run_cli(lambda args: run(args, prog), argv, prog=prog)
