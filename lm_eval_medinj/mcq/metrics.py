"""Per-question scores for multiple-choice answers (the paper's EM and Hamming score)."""

from __future__ import annotations

from collections.abc import Collection


def exact_match(gold: Collection[str], predicted: Collection[str] | None) -> float:
    """1.0 when the predicted letter set equals the gold set, else 0.0 (``None`` is wrong)."""
    return float(predicted is not None and set(predicted) == set(gold))


def hamming_score(gold: Collection[str], predicted: Collection[str] | None) -> float:
    """|gold ∩ predicted| / |gold ∪ predicted|; an unparseable answer (``None``) scores 0."""
    if not predicted:
        return 0.0
    gold_set, predicted_set = set(gold), set(predicted)
    return len(gold_set & predicted_set) / len(gold_set | predicted_set)
