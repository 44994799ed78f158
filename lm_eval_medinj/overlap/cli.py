"""``medinj overlap``: audit training data against test sets (docs/OVERLAP.md).

    medinj overlap --train PATH --tests TASK[,TASK...] [--metadata JSON] [--ngram 13]
                   [--ngram-share 0.5] [--threshold 0.55] [--boilerplate 100] --out DIR

``run(argv)`` raises the package's errors; ``main(argv)`` prints a data or usage error as one line
and exits 2 (``--debug``: traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval_medinj.errors import UsageError, run_cli
from lm_eval_medinj.overlap.audit import AuditSettings, run_audit
from lm_eval_medinj.overlap.report import write_outputs
from lm_eval_medinj.overlap.test_side import load_test_sets
from lm_eval_medinj.overlap.training_side import ReadSettings, load_train

log = logging.getLogger("medinj.overlap")
DEFAULTS = AuditSettings()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medinj overlap", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--train",
        required=True,
        type=Path,
        help="a mixtures folder of train/sft.py --dry-run, a data folder in the Hub layout, "
        "or a FrenchMedMCQA / MediQAl folder",
    )
    p.add_argument("--tests", required=True, help="lm-eval task or group names, comma-separated")
    p.add_argument(
        "--metadata", default=None, help="JSON object given to the tasks, as lm_eval's: '{\"data_dir\": ...}'"
    )
    p.add_argument("--ngram", type=int, default=DEFAULTS.ngram, help="n of the word n-grams (default 13)")
    p.add_argument(
        "--ngram-share",
        type=float,
        default=DEFAULTS.ngram_share,
        help="share of a test question's n-grams one training record must hold (default 0.5; 0: any one, as lm-eval)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULTS.threshold,
        help="near-duplicate Jaccard threshold over word 3-shingles (default 0.55)",
    )
    p.add_argument(
        "--boilerplate",
        type=int,
        default=DEFAULTS.boilerplate,
        help="lines and n-grams in more than this many records are boilerplate, left out (default 100)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="drop unreadable training records (a duplicate id...) with a warning instead of stopping",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for overlap.json and overlap.md")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bars (default: on a terminal)"
    )
    return p


def _metadata(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        metadata = json.loads(value)
    except json.JSONDecodeError as error:
        raise UsageError(f"--metadata is not JSON: {error}") from None
    if not isinstance(metadata, dict):
        raise UsageError(f"--metadata must be a JSON object, got {value!r}")
    return metadata


class _Clock:
    """Seconds since the last lap, and in all."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> str:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return f"{seconds:.0f} s"

    def total(self) -> str:
        return f"{time.perf_counter() - self.start:.0f} s in all"


def run(argv: Sequence[str]) -> dict[str, Any]:
    """Run the audit and write its outputs; returns the ``overlap.json`` record."""
    args = parser().parse_args(list(argv))
    try:
        import datasketch  # noqa: F401  (imported by overlap.near when the index is built)
    except ImportError:
        raise UsageError("medinj overlap needs datasketch: pip install 'lm-eval-medinj[study]'") from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = AuditSettings(args.ngram, args.ngram_share, args.threshold, args.boilerplate)
    settings.check()
    names = [name.strip() for name in args.tests.split(",") if name.strip()]
    if not names:
        raise UsageError("--tests names no task")
    metadata = _metadata(args.metadata)
    clock = _Clock()
    train = load_train(args.train, ReadSettings(args.skip_invalid, args.progress))
    log.info(
        "training side: %s layout, %d records in %s (%s)",
        train.layout, len(train.ids), ", ".join(train.groups), clock.lap(),
    )  # fmt: skip
    tests = load_test_sets(names, metadata)
    log.info("test side: %d questions in %d test sets (%s)", len(tests.docs), len(tests.tasks), clock.lap())
    result = run_audit(train, tests, settings, args.progress)
    log.info("matched (%s)", clock.lap())
    command = {"train": str(args.train), "tests": names, "metadata": metadata}
    record = write_outputs(result, args.out, command)
    flagged = len({(entry["task"], entry["id"]) for entry in record["flagged"]})
    log.info(
        "%d of %d test questions flagged: %s (%s)", flagged, len(tests.docs), args.out / "overlap.json", clock.total()
    )
    return record


def main(argv: Sequence[str] | None = None, prog: str = "medinj overlap") -> None:
    """``medinj overlap``: ``run`` with data and usage errors printed as one line (exit status 2)."""
    run_cli(run, argv, prog=prog)
