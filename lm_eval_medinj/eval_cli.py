"""lm-eval's own command line run with this package's tasks and models (``medinj eval``, ``medinj demo``).

Its own module, so that ``cli`` and ``demo`` both use it without importing each other.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

from lm_eval_medinj.paths import tasks_path

LM_EVAL_SUBCOMMANDS = {"run", "ls", "validate"}
# Modules whose import registers this package's lm-eval model backends, when present.
MODEL_MODULES = ("lm_eval_medinj.models",)


def register_models() -> None:
    """Import the modules that register ``medinj-*`` models with lm-eval's registry."""
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


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
    """Run lm-eval's own CLI in this process, with tasks and models registered."""
    from lm_eval.__main__ import cli_evaluate

    register_models()
    sys.argv = ["lm-eval", *lm_eval_argv(args)]
    cli_evaluate()
