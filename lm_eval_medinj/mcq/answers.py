"""Answer strings for multiple-choice questions: the canonical form and the valid candidates.

Canonical form: "A" for single-answer (MCQU) and sorted letters joined by ", " for
multi-answer (MCQ), e.g. "A, C". Training targets and choice-scoring candidates use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

SEPARATOR = ", "


def format_answer(letters: Iterable[str]) -> str:
    """Canonical answer string: sorted, duplicate-free letters joined by ", "."""
    return SEPARATOR.join(sorted(set(letters)))


def candidate_answers(option_letters: Sequence[str], multi: bool) -> list[str]:
    """Every valid answer string: each letter (MCQU) or each non-empty sorted subset (MCQ)."""
    letters = sorted(option_letters)
    if not multi:
        return letters
    return [format_answer(subset) for size in range(1, len(letters) + 1) for subset in combinations(letters, size)]
