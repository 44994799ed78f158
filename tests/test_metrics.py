"""EM and Hamming score against hand-computed values."""

from __future__ import annotations

import pytest

from lm_eval_medinj.mcq.metrics import exact_match, hamming_score


@pytest.mark.parametrize(
    ("gold", "predicted", "em", "hamming"),
    [
        ({"A", "C"}, {"A", "C"}, 1.0, 1.0),
        ({"A", "C"}, {"A"}, 0.0, 1 / 2),  # ∩ {A}, ∪ {A, C}
        ({"A", "C"}, {"A", "B"}, 0.0, 1 / 3),  # ∩ {A}, ∪ {A, B, C}
        ({"A", "C", "D"}, {"B", "C", "D", "E"}, 0.0, 2 / 5),
        ({"B"}, {"D"}, 0.0, 0.0),
        ({"B"}, None, 0.0, 0.0),  # unparseable
    ],
)
def test_hand_computed(gold: set[str], predicted: set[str] | None, em: float, hamming: float) -> None:
    assert exact_match(gold, predicted) == em
    assert hamming_score(gold, predicted) == pytest.approx(hamming)
