"""Answer strings for multiple-choice questions: canonical form, candidates, strict parsing.

Canonical form: "A" for single-answer (MCQU) and sorted letters joined by ", " for
multi-answer (MCQ), e.g. "A, C". Training targets, choice-scoring candidates and the
greedy parser all use the functions below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import combinations

SEPARATOR = ", "
_LETTER_LIST = re.compile(r"^\s*([A-Z](?:(?:\s*[,;]\s*|\s+)[A-Z])*)\.?\s*$")
_LETTER = re.compile(r"[A-Z]")


def format_answer(letters: Iterable[str]) -> str:
    """Canonical answer string: sorted, duplicate-free letters joined by ", "."""
    return SEPARATOR.join(sorted(set(letters)))


def candidate_answers(option_letters: Sequence[str], multi: bool) -> list[str]:
    """Every valid answer string: each letter (MCQU) or each non-empty sorted subset (MCQ)."""
    letters = sorted(option_letters)
    if not multi:
        return letters
    return [format_answer(subset) for size in range(1, len(letters) + 1) for subset in combinations(letters, size)]


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
