"""How a generation request carries its output constraint (the ``_gen`` tasks).

A constraint is a JSON-serialisable dict with exactly one key: ``{"token_mask": [letters]}``
(the paper protocol, :mod:`lm_eval_medinj.protocol.paper`), or ``{"regex": PATTERN}`` /
``{"choices": [STRING, ...]}`` (the strict protocol, :mod:`lm_eval_medinj.protocol.strict`).
Tasks put it into each request's generation kwargs under :data:`CONSTRAINT_KEY`; the
``medinj-hf`` and ``medinj-vllm`` backends enforce it. Patterns use only literals, groups, ``|``
and ``?``, so Python's ``re``, outlines-core and vLLM read them the same way.
"""

from __future__ import annotations

import re
from typing import Any

CONSTRAINT_KEY = "medinj_constraint"
TOKEN_MASK = "token_mask"
Constraint = dict[str, Any]


def is_token_mask(constraint: Constraint) -> bool:
    """Whether the constraint is the authors' token mask (else a grammar: regex or choices)."""
    return set(constraint) == {TOKEN_MASK}


def constraint_regex(constraint: Constraint) -> str:
    """A grammar constraint as one regex (choices become an alternation of literals)."""
    if set(constraint) == {"regex"}:
        return str(constraint["regex"])
    if set(constraint) == {"choices"} and constraint["choices"]:
        return "(" + "|".join(_escape_literal(choice) for choice in constraint["choices"]) + ")"
    raise ValueError(f"a grammar constraint is {{'regex': str}} or {{'choices': [str, ...]}}, got {constraint!r}")


def _escape_literal(text: str) -> str:
    """Escape regex metacharacters only (outlines-core rejects escaped spaces or letters)."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def matches(constraint: Constraint, text: str) -> bool:
    """Whether ``text`` is, in full, an output the grammar constraint allows."""
    return re.fullmatch(constraint_regex(constraint), text) is not None
