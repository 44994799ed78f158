"""The ``medinj`` command: every step of the study, one subcommand each.

Each subcommand is a module with ``main(argv, prog)`` (argument parsing, then library calls),
imported only when its name is typed, so ``medinj --help`` and ``medinj tasks-path`` load nothing
heavy. A data or usage error is one line, exit status 2 (``--debug`` or ``MEDINJ_DEBUG=1``: the
traceback); see :mod:`lm_eval_medinj.errors`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from lm_eval_medinj.errors import DEBUG_FLAG

# name -> (module with main(argv, prog), one-line help), in the order of the study
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("lm_eval_medinj.cli.train", "build the SFT mixtures and fine-tune a model on each (train/sft.py)"),
    "overlap": ("lm_eval_medinj.overlap.cli", "contamination audit: training data against test sets"),
    "eval": ("lm_eval_medinj.cli.eval", "lm-eval's CLI with this package's tasks and models; all flags pass through"),
    "judge": ("lm_eval_medinj.cli.judge", "judge open answers with an LLM (judge/score.py)"),
    "annotate": ("lm_eval_medinj.annotate.cli", "human expert review: sample, serve a rating page, agreement"),
    "meta-eval": ("lm_eval_medinj.cli.meta_eval", "choose a judge on human ratings (judge/meta_eval.py)"),
    "report": ("lm_eval_medinj.cli.report", "Table 1 with CIs, paired tests and breakdowns over several runs"),
    "breakdown": ("lm_eval_medinj.cli.breakdown", "scores by a document field, from lm-eval's logged samples"),
    "demo": ("lm_eval_medinj.demo", "evaluate SmolLM2-135M-Instruct offline on the shipped demo questions"),
    "tasks-path": ("lm_eval_medinj.cli.tasks_path", "print the folder to pass to lm-eval --include_path"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return (
        "usage: medinj COMMAND [ARGS ...]   (medinj COMMAND --help for its arguments)\n\n"
        "The MedInjection-FR study, start to finish.\n\ncommands:\n" + "\n".join(lines) + "\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``medinj COMMAND ...``: run one subcommand."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = [arg for arg in args if arg == DEBUG_FLAG]  # anywhere, as every subcommand reads it
    args = [arg for arg in args if arg != DEBUG_FLAG]
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"medinj: error: unknown command {command!r}\n\n{usage()}", file=sys.stderr, end="")
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[command][0])
    module.main([*rest, *debug], prog=f"medinj {command}")


if __name__ == "__main__":
    main()
