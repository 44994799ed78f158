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
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.errors import run_cli
from lm_eval_medinj.judge.backends import DEFAULT_JUDGE, make_backend
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.cli_args import add_judge_args, backend_options
from lm_eval_medinj.judge.items import read_items
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.scoring import find_samples, score_file


def score(argv: Sequence[str], prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="samples files, folders, or plain JSONL files")
    parser.add_argument("--judge", default=DEFAULT_JUDGE, help=f"judge spec (default {DEFAULT_JUDGE})")
    parser.add_argument("--pattern", default="samples_*oeq*.jsonl", help="samples files to find in folders")
    parser.add_argument("--calibration", type=Path, help="calibration JSON written by meta_eval.py")
    parser.add_argument("--output-dir", type=Path, help="write outputs here instead of beside each input")
    add_judge_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    prompt = load_prompt(args.prompt)
    files = find_samples(args.inputs, args.pattern)
    for path in files:  # a malformed input stops the run before the judge is loaded
        read_items(path)
    backend = make_backend(args.judge, backend_options(args))
    calibration = Calibration.load(args.calibration) if args.calibration else None
    if calibration is not None:
        calibration.check(backend.judge_id, prompt.prompt_id)
    cache = JudgementCache(args.cache)
    try:
        for path in files:
            aggregate = score_file(
                path,
                backend,
                prompt,
                cache,
                calibration,
                args.batch_size,
                args.output_dir,
                progress=not args.no_progress,
            )
            print(json.dumps(aggregate, ensure_ascii=False))
    finally:
        cache.close()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda args: score(args, prog), argv, prog=prog)


if __name__ == "__main__":
    main()
