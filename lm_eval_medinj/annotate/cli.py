"""``medinj annotate``: human expert review of open answers (docs/HUMAN.md).

    medinj annotate sample --model NAT=out/nat --model base=out/base --n 100 --seed 0 --out ann/
    medinj annotate serve ann/ --rater dr_martin            # http://127.0.0.1:8765/
    medinj annotate agreement ann/ --json ann-agreement.json

A data or usage error is one line, exit status 2 (``--debug`` or ``MEDINJ_DEBUG=1``: the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import UsageError, run_cli
from lm_eval_medinj.files import write_json_atomic

PROG = "medinj annotate"


def _run(value: str) -> tuple[str, Path]:
    label, sep, folder = value.partition("=")
    if not sep or not label.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {value!r}")
    return label.strip(), Path(folder)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("sample", help="draw blinded rating items from lm-eval OEQ runs")
    sample.add_argument(
        "--model", dest="runs", type=_run, action="append", required=True, metavar="LABEL=FOLDER",
        help="a model's label and its lm-eval --output_path (with OEQ samples); repeat for each model",
    )  # fmt: skip
    sample.add_argument("--n", type=int, default=100, help="items to rate in all (default 100)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draw and of each rater's order")
    sample.add_argument("--scale", choices=("binary", "likert5"), default="binary", help="binary (default) or 1-5")
    sample.add_argument("--by-verdict", action="store_true", help="stratify by the judge's verdict too")
    sample.add_argument("--judge", help="judge spec whose judge/score.py rows to read, when several judged a run")
    sample.add_argument("--out", type=Path, required=True, help="new annotation folder")

    serve = commands.add_parser("serve", help="the rating page for one rater")
    serve.add_argument("folder", type=Path)
    serve.add_argument("--rater", required=True, help="rater name (letters, digits, '.', '_', '-')")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", help="access token (or $MEDINJ_ANNOTATE_TOKEN); required off loopback")

    agreement = commands.add_parser("agreement", help="per-rater counts, kappa / alpha, per-model means")
    agreement.add_argument("folder", type=Path)
    agreement.add_argument("--json", type=Path, help="also write the figures as JSON")
    agreement.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    agreement.add_argument("--seed", type=int, default=0)
    agreement.add_argument("--min-spread", type=int, default=1, help="list items whose ratings differ by this much")
    return parser


def _sample(args: argparse.Namespace) -> None:
    from lm_eval_medinj.annotate.sample import sample_folder

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    study = sample_folder(args.out, args.runs, args.n, args.seed, args.scale, args.by_verdict, args.judge)
    print(f"wrote {args.out}: {study.n} items from {', '.join(study.models)} ({study.scale.kind} scale)")
    print(f"next: medinj annotate serve {args.out} --rater NAME")


def _serve(args: argparse.Namespace) -> None:
    from lm_eval_medinj.annotate.folder import check_rater
    from lm_eval_medinj.annotate.server import TOKEN_ENV, serve

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    serve(args.folder, check_rater(args.rater), args.host, args.port, token)


def _agreement(args: argparse.Namespace) -> None:
    from lm_eval_medinj.annotate.folder import read_folder

    if args.n_boot < 1:
        raise UsageError(f"--n-boot must be at least 1, got {args.n_boot}")
    if args.min_spread < 1:
        raise UsageError(f"--min-spread must be at least 1, got {args.min_spread}")
    folder = read_folder(args.folder)  # before SciPy and scikit-learn load: a bad folder fails fast
    from lm_eval_medinj.annotate.agreement import agreement_report, to_text

    report = agreement_report(folder, args.n_boot, args.seed, args.min_spread)
    print(to_text(report))
    if args.json:
        write_json_atomic(args.json, report)
        print(f"\nwritten: {args.json}")


def annotate(argv: Sequence[str]) -> None:
    args = _parser().parse_args(argv)
    {"sample": _sample, "serve": _serve, "agreement": _agreement}[args.command](args)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> None:
    run_cli(annotate, argv, prog=prog)


if __name__ == "__main__":
    main(sys.argv[1:])
