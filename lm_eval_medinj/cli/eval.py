"""``medinj eval``: lm-eval's own command line, run with this package's tasks and models registered.

Every flag passes through to lm-eval; the package's task folder is added as ``--include_path``.
Plain ``lm_eval`` finds the same tasks and backends through the start-up hook
(:mod:`lm_eval_medinj.lm_eval_hook`); this command also works with the hook turned off.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lm_eval_medinj.errors import run_cli
from lm_eval_medinj.paths import tasks_path

LM_EVAL_SUBCOMMANDS = {"run", "ls", "validate"}


def lm_eval_argv(args: Sequence[str]) -> list[str]:
    """lm-eval arguments with this package's task folder added to ``--include_path``."""
    argv = list(args)
    if not argv or argv[0] not in LM_EVAL_SUBCOMMANDS:
        argv.insert(0, "run")
    if any(arg == "--include_path" or arg.startswith("--include_path=") for arg in argv):
        raise SystemExit(
            "medinj eval: lm-eval 0.4.13 accepts a single --include_path, which medinj eval sets to "
            f"{tasks_path()}. To add your own tasks, run plain lm_eval with --include_path on a folder "
            "that holds both (e.g. a copy of that folder beside yours)."
        )
    include = str(tasks_path())
    return [*argv, "--include_path", include]


def run_lm_eval(args: Sequence[str]) -> None:
    """Run lm-eval's own CLI in this process, with the backends and the ``_gen`` request type registered."""
    from lm_eval.__main__ import cli_evaluate

    from lm_eval_medinj.lm_eval_hook import register_backends, register_request_type

    register_backends()
    register_request_type()
    sys.argv = ["lm-eval", *lm_eval_argv(args)]
    cli_evaluate()


def main(argv: Sequence[str] | None = None, prog: str = "medinj eval") -> None:
    """``run_lm_eval`` with the package's data and usage errors as one line (exit status 2)."""
    run_cli(run_lm_eval, argv, prog=prog)
