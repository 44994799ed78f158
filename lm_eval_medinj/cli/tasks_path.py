"""``medinj tasks-path``: the folder of this package's lm-eval task YAML (for ``--include_path``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lm_eval_medinj.paths import tasks_path


def main(argv: Sequence[str] | None = None, prog: str = "medinj tasks-path") -> None:
    argparse.ArgumentParser(prog=prog, description=__doc__).parse_args(argv)
    print(tasks_path())
