"""The strict protocol: only a valid, sorted letter set, then the end token; a strict parse.

The constraint of a question is its letters (MCQU) or every non-empty sorted letter set in
canonical form ("A, C"; MCQ), enforced by an outlines-core / vLLM grammar. The parse accepts
letters separated by commas, semicolons or spaces, one final full stop at most.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from lm_eval_medinj.mcq.answers import SEPARATOR
from lm_eval_medinj.protocol.constraints import Constraint

_LETTER_LIST = re.compile(r"^\s*([A-Z](?:(?:\s*[,;]\s*|\s+)[A-Z])*)\.?\s*$")
_LETTER = re.compile(r"[A-Z]")


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


def parse_answer(text: str, option_letters: Iterable[str]) -> frozenset[str] | None:
    """Strictly parse a generated answer into a set of option letters.

    Accepted: upper-case letters separated by commas, semicolons or spaces, with optional
    surrounding whitespace and one trailing full stop ("A", "A, C", "B,D", "A C."). Anything
    else (prose, "(A)", lower case), a repeated letter, or a letter that is not an option
    returns ``None``: the answer is wrong, as in the paper's strict evaluation.
    """
    match = _LETTER_LIST.match(text)
    if match is None:
        return None
    letters = _LETTER.findall(match.group(1))
    if len(set(letters)) != len(letters) or not set(letters) <= set(option_letters):
        return None
    return frozenset(letters)
