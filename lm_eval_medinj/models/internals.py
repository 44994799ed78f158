"""Loud checks on the lm-eval members the ``medinj-*`` backends override or call.

They were written against lm-eval 0.4.13 (``lm_eval_medinj/lm_eval_hook.py`` lists every library
internal this package relies on, with the versions checked). A release that renames one of
these members would otherwise change results silently; importing the backend stops instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version

CHECKED_LM_EVAL = "0.4.13"


class LmEvalInternalsError(ImportError):
    """The installed lm-eval lacks a member a ``medinj-*`` backend relies on."""


def require_members(cls: type, names: Iterable[str], backend: str) -> None:
    """Raise unless ``cls`` has every member in ``names``."""
    missing = [name for name in names if not hasattr(cls, name)]
    if missing:
        raise LmEvalInternalsError(
            f"{backend} was written against lm-eval {CHECKED_LM_EVAL}; lm-eval {version('lm_eval')} has no "
            f"{', '.join(f'{cls.__name__}.{name}' for name in missing)}. Install lm-eval=={CHECKED_LM_EVAL}, "
            "or use lm-eval's own backend (--model hf / vllm) without the _gen tasks."
        )
