"""``medinj judge`` (and ``python judge/score.py``): score open answers with an LLM judge.

Per-item verdict and P(equivalent), and the aggregate:

    medinj judge out/lm-eval-run --judge hf:google/medgemma-27b-text-it [--calibration cal.json]

Inputs: lm-eval ``--log_samples`` files (or folders holding them) or a plain JSONL of
question / reference (or messages) / candidate. Writes ``judge_<judge>_<task>_<date>.jsonl`` and
``judge_results_<judge>_<task>_<date>.json`` beside each input. Results are cached; a re-run
only scores what is missing; several runs may share one cache (each item is scored by one of them
and stored once). The prompt is the paper's (``--prompt paper``, the default; ``--prompt v1``
for this package's French one). A data or usage error is one line, exit status 2 (``--debug`` or
``MEDINJ_DEBUG=1``: the traceback).

A served judge's requests are retried (``--timeout``, ``--max-retries``). Each judgement is stored
as it is made. Items that still fail are listed on stderr (one line each) and the run exits 2;
their files' outputs are not written (never an aggregate over part of a file). An answer that is not
a judgement (not JSON, no log-probabilities...) stops the run with one line naming the judge and item.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import run_cli
from lm_eval_medinj.judge.backends import DEFAULT_JUDGE, make_backend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.cli_args import add_judge_args, backend_options, check_folder
from lm_eval_medinj.judge.failures import ItemFailure, JudgeError, JudgeFailedError
from lm_eval_medinj.judge.items import read_items
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.scoring import find_samples, score_file

PROG = "score.py"  # the model card's judge/score.py; `medinj judge` passes its own name


def score(argv: Sequence[str], prog: str = PROG) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="samples files, folders, or plain JSONL files")
    parser.add_argument("--judge", default=DEFAULT_JUDGE, help=f"judge spec (default {DEFAULT_JUDGE})")
    parser.add_argument("--pattern", default="samples_*oeq*.jsonl", help="samples files to find in folders")
    parser.add_argument("--calibration", type=Path, help="calibration JSON written by meta_eval.py")
    parser.add_argument("--output-dir", type=Path, help="write outputs here instead of beside each input")
    add_judge_args(parser)
    args = parser.parse_args(argv)
    check_folder(args.output_dir, "--output-dir")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    prompt = load_prompt(args.prompt)
    files = find_samples(args.inputs, args.pattern)
    for path in files:  # a malformed input (or calibration) stops the run before the judge is loaded
        read_items(path)
    calibration = Calibration.load(args.calibration) if args.calibration else None
    backend = make_backend(args.judge, backend_options(args))
    if calibration is not None:
        calibration.check(backend.judge_id, prompt.prompt_id)
    cache = JudgementCache(args.cache)
    failures: list[ItemFailure] = []
    try:
        for path in files:
            scored = score_file(
                path,
                backend,
                prompt,
                cache,
                calibration,
                args.batch_size,
                args.output_dir,
                progress=not args.no_progress,
            )
            if scored.aggregate is None:
                failures += scored.failures
                print(
                    f"{prog}: {path}: {len(scored.failures)} item(s) not judged: outputs not written", file=sys.stderr
                )
            else:
                print(json.dumps(scored.aggregate, ensure_ascii=False, allow_nan=False))
    finally:
        cache.close()
    if failures:
        for failure in failures:
            print(f"{prog}: not judged: {failure.line()}", file=sys.stderr)
        raise JudgeFailedError(failures)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> None:
    run_cli(lambda args: score(args, prog), argv, errors=(JudgeError,), prog=prog)


if __name__ == "__main__":
    main()
