"""Per-document output constraints for constrained generation (the ``_gen`` tasks).

A constraint is a JSON-serialisable dict with exactly one key: ``{"regex": PATTERN}`` or
``{"choices": [STRING, ...]}``. Tasks put it into each request's generation kwargs under
:data:`CONSTRAINT_KEY`; the ``medinj-hf`` and ``medinj-vllm`` backends enforce it. Patterns
use only literals, groups, ``|`` and ``?``, so Python's ``re``, outlines-core and vLLM read
them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lm_eval_medinj.answers import SEPARATOR

CONSTRAINT_KEY = "medinj_constraint"
Constraint = dict[str, Any]


def letter_set_pattern(option_letters: Sequence[str]) -> str:
    """Regex of every non-empty, sorted, duplicate-free letter set in canonical form ("A, C").

    Each branch starts with the smallest chosen letter, then lists the larger ones, each
    optional and in order: the pattern grows with the square of the number of options.
    """
    letters = sorted(set(option_letters))
    if not letters or any(not re.fullmatch(r"[A-Z]", letter) for letter in letters):
        raise ValueError(f"option letters must be single upper-case letters, got {list(option_letters)}")
    branches = [
        first + "".join(f"({SEPARATOR}{later})?" for later in letters[index + 1 :])
        for index, first in enumerate(letters)
    ]
    return "(" + "|".join(branches) + ")"


def answer_constraint(option_letters: Sequence[str], multi: bool, prefix: str = "") -> Constraint:
    """The constraint of one question: its letters (MCQU) or sorted letter sets (MCQ).

    ``prefix`` is what lm-eval puts between prompt and answer: the target delimiter " "
    without a chat template, nothing after an assistant header. The allowed strings are then
    exactly the candidates that choice scoring ranks.
    """
    if prefix.strip():
        raise ValueError(f"the answer prefix must be whitespace, got {prefix!r}")
    if multi:
        return {"regex": prefix + letter_set_pattern(option_letters)}
    return {"choices": [prefix + letter for letter in sorted(set(option_letters))]}


def constraint_regex(constraint: Constraint) -> str:
    """The constraint as one regex (choices become an alternation of literals)."""
    if set(constraint) == {"regex"}:
        return str(constraint["regex"])
    if set(constraint) == {"choices"} and constraint["choices"]:
        return "(" + "|".join(_escape_literal(choice) for choice in constraint["choices"]) + ")"
    raise ValueError(f"a constraint is {{'regex': str}} or {{'choices': [str, ...]}}, got {constraint!r}")


def _escape_literal(text: str) -> str:
    """Escape regex metacharacters only (outlines-core rejects escaped spaces or letters)."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def matches(constraint: Constraint, text: str) -> bool:
    """Whether ``text`` is, in full, an output the constraint allows."""
    return re.fullmatch(constraint_regex(constraint), text) is not None


def answer_token_budget(num_options: int, multi: bool) -> int:
    """The paper's max new tokens: 1 for MCQU, 2 x the number of options for MCQ."""
    return 2 * num_options if multi else 1
