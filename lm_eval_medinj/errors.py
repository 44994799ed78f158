"""How the command-line tools report a data or usage error: one line, no traceback, exit status 2.

``run_cli(main)`` calls ``main(argv)`` and turns the package's data and usage errors into
``<prog>: error: <message>`` on stderr and exit status 2 (argparse's own convention). Anything else
is a bug and keeps its traceback. ``--debug`` (anywhere in the arguments; removed before ``main``
sees them) or ``MEDINJ_DEBUG=1`` re-raises the error with its traceback.

Caught: :class:`UsageError` and :class:`InputError` (below), the package's
``RecordError`` (an unreadable record), ``DataNotFoundError`` and any ``FileNotFoundError`` (a
missing input), plus the types each tool adds (e.g. ``MixtureShortfallError`` for ``train/sft.py``).
This module imports nothing heavy, so the tools can import it first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
DEBUG_FLAG = "--debug"
DEBUG_ENV = "MEDINJ_DEBUG"


class ErrorExit(SystemExit):
    """Exit status 2 after a one-line error message; ``str()`` is the message (for callers and tests)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ValueError):
    """A bad flag, flag value or combination of flags."""


class InputError(ValueError):
    """An input file the tool cannot use (malformed row, missing field, mismatched calibration...)."""


def one_line(text: str, limit: int = 160) -> str:
    """``text`` on one line, cut to ``limit`` characters (server bodies, exception texts, values in messages)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def data_errors() -> tuple[type[BaseException], ...]:
    """The error types every tool reports as one line."""
    from lm_eval_medinj.records import RecordError

    return UsageError, InputError, RecordError, FileNotFoundError  # DataNotFoundError is a FileNotFoundError


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes"}


def run_cli(
    main: Callable[[list[str]], T],
    argv: Sequence[str] | None = None,
    errors: tuple[type[BaseException], ...] = (),
    prog: str | None = None,
) -> T:
    """``main(argv)`` with the data and usage errors (``data_errors()`` and ``errors``) printed as one
    line and exit status 2; ``--debug`` or ``MEDINJ_DEBUG=1`` keeps the traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [arg for arg in args if arg != DEBUG_FLAG]
    try:
        return main(args)
    except (*data_errors(), *errors) as error:
        if debug:
            raise
        name = prog or os.path.basename(sys.argv[0]) or "medinj"
        message = str(error) or type(error).__name__
        line = f"{name}: error: {' '.join(message.split())}"  # one line
        print(line, file=sys.stderr)
        raise ErrorExit(line) from None
