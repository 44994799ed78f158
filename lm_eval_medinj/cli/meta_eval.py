"""``medinj meta-eval`` (and ``python judge/meta_eval.py``): choose a judge on human ratings.

Meta-evaluate judges against human ratings; calibrate; test verbosity and position bias:

    medinj meta-eval --data ratings.csv --judge hf:A --judge openai:B@http://HOST:8000/v1 --out DIR

``--data``: CSV or JSONL with question, reference, candidate and a rating (binary or ordinal), or an
annotation folder of ``medinj annotate`` (docs/HUMAN.md): its rated items, each rated with the mean
over its raters, or with one rater's rating (``--rater NAME``); the default ``--threshold`` is then the
midpoint of the folder's scale (0.5 or 3).
``--sanity-from``: instead (or as well), derive labelled items from MCQ data such as FrenchMedMCQA
(with ``--data``, their 0/1 labels become the lowest/highest human rating).
Writes ``report.md``, ``metrics.json`` (an undefined statistic, e.g. a correlation of a constant, is
``null``), ``calibration_<judge>.json`` and PNG plots into ``--out``. Every item must be judged: items
that fail after the retries stop the run (exit 2) with the judged ones stored in the cache.
The judges read the paper's prompt unless ``--prompt`` names another (``v1`` or a file).
A data or usage error is one line, exit status 2 (``--debug`` or ``MEDINJ_DEBUG=1``: the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from lm_eval_medinj.errors import run_cli
from lm_eval_medinj.judge.backends import make_backend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.cli_args import add_judge_args, backend_options, check_folder
from lm_eval_medinj.judge.failures import JudgeError
from lm_eval_medinj.judge.items import read_labelled, write_labelled
from lm_eval_medinj.judge.metaeval import MetaEvalSettings, meta_evaluate, null_for_undefined
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.report import write_report
from lm_eval_medinj.judge.sanity import mcq_sanity_items
from lm_eval_medinj.judge.stats import binarise

PROG = "meta_eval.py"  # the model card's judge/meta_eval.py; `medinj meta-eval` passes its own name


def meta_eval(argv: Sequence[str], prog: str = PROG) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data", type=Path, help="labelled CSV/JSONL, or an annotation folder (medinj annotate)")
    parser.add_argument("--rater", help="with an annotation folder: this rater's ratings (default: mean over raters)")
    parser.add_argument("--sanity-from", type=Path, help="MCQ file or folder (e.g. FrenchMedMCQA test.json)")
    parser.add_argument("--sanity-questions", type=int, default=50, help="questions for the sanity set (2 items each)")
    parser.add_argument("--judge", action="append", required=True, help="judge spec; repeat to compare")
    parser.add_argument("--out", type=Path, required=True, help="report folder (not a file)")
    parser.add_argument(
        "--threshold",
        type=float,
        help="ratings above it count as equivalent (default: the midpoint of the observed ratings, or of an "
        "annotation folder's scale)",
    )
    parser.add_argument("--calibration-method", choices=("platt", "isotonic"), default="platt")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    add_judge_args(parser)
    args = parser.parse_args(argv)
    check_folder(args.out, "--out")
    if not args.data and not args.sanity_from:
        parser.error("give --data, --sanity-from, or both")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.rater and not args.data:
        parser.error("--rater needs --data (an annotation folder)")
    labelled = read_labelled(args.data, args.rater) if args.data else []
    if args.threshold is None and args.data and args.data.is_dir():
        from lm_eval_medinj.annotate.folder import read_study  # the "annotate" extra

        args.threshold = read_study(args.data).scale.midpoint  # the scale's, whichever ratings were given
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sanity_from:
        sanity = mcq_sanity_items(args.sanity_from, args.sanity_questions, args.seed)
        if labelled:  # put the 0/1 labels on the human scale: 0 -> lowest rating, 1 -> highest
            low, high = min(x.rating for x in labelled), max(x.rating for x in labelled)
            sanity = [replace(x, rating=high if x.rating else low) for x in sanity]
        write_labelled(args.out / "sanity_items.jsonl", sanity)
        labelled += sanity
    prompt = load_prompt(args.prompt)
    settings = MetaEvalSettings(
        args.threshold,
        args.n_boot,
        args.seed,
        args.calibration_method,
        args.batch_size,
        progress=not args.no_progress,
    )
    cache = JudgementCache(args.cache)
    try:
        backends = [make_backend(spec, backend_options(args)) for spec in args.judge]
        reports, summary = meta_evaluate(labelled, backends, prompt, cache, args.out, settings)
    finally:
        cache.close()
    ratings = np.array([x.rating for x in labelled], dtype=float)
    source = " + ".join(str(p) for p in (args.data, args.sanity_from) if p)
    report = write_report(reports, summary, ratings, binarise(ratings, args.threshold), args.out, source)
    metrics = json.dumps(null_for_undefined(summary), indent=2, ensure_ascii=False, allow_nan=False)
    (args.out / "metrics.json").write_text(metrics, encoding="utf-8")
    print(report.read_text(encoding="utf-8"))
    print(f"\nwritten: {report}, {args.out / 'metrics.json'}")


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> None:
    run_cli(lambda args: meta_eval(args, prog), argv, errors=(JudgeError,), prog=prog)


if __name__ == "__main__":
    main()
