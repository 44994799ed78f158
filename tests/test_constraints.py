"""Answer constraints: exactly the canonical answers, readable by the strict parser."""

from __future__ import annotations

from itertools import product

import pytest

from lm_eval_medinj.mcq.answers import candidate_answers
from lm_eval_medinj.protocol import answer_token_budget
from lm_eval_medinj.protocol.constraints import constraint_regex, matches
from lm_eval_medinj.protocol.strict import answer_constraint, letter_set_pattern, parse_answer

LETTERS = ["A", "B", "C", "D", "E"]


def _letter_lists(max_length: int) -> list[str]:
    """Every ", "-joined list of option letters (repeats and any order) up to ``max_length``."""
    return [", ".join(letters) for n in range(1, max_length + 1) for letters in product(LETTERS, repeat=n)]


def test_mcq_constraint_allows_exactly_the_choice_candidates() -> None:
    constraint = answer_constraint(LETTERS, multi=True)
    allowed = {text for text in _letter_lists(5) if matches(constraint, text)}
    assert allowed == set(candidate_answers(LETTERS, multi=True))


def test_mcqu_constraint_allows_exactly_one_letter() -> None:
    constraint = answer_constraint(["B", "A", "C"], multi=False)
    assert constraint == {"choices": ["A", "B", "C"]}
    assert [text for text in _letter_lists(2) if matches(constraint, text)] == ["A", "B", "C"]


@pytest.mark.parametrize("prefix", ["", " "])
@pytest.mark.parametrize("multi", [False, True])
def test_every_allowed_answer_parses_to_its_letters(prefix: str, multi: bool) -> None:
    constraint = answer_constraint(LETTERS, multi=multi, prefix=prefix)
    for candidate in candidate_answers(LETTERS, multi=multi):
        assert matches(constraint, prefix + candidate)
        assert not matches(constraint, (" " if not prefix else "") + candidate)
        assert parse_answer(prefix + candidate, LETTERS) == frozenset(candidate.split(", "))


def test_constraints_reject_what_the_strict_parser_rejects() -> None:
    constraint = answer_constraint(LETTERS, multi=True, prefix=" ")
    for text in [" ", " C, A", " A, A", " A,C", " A, F", " a", " A.", " (A)", " A, C\n"]:
        assert not matches(constraint, text), text


def test_pattern_uses_only_portable_regex_syntax() -> None:
    assert letter_set_pattern(["C", "A", "B"]) == "(A(, B)?(, C)?|B(, C)?|C)"
    assert constraint_regex({"choices": [" A", "x.y"]}) == r"( A|x\.y)"


def test_invalid_constraints_are_refused() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        answer_constraint(LETTERS, multi=False, prefix="Réponse :")
    with pytest.raises(ValueError, match="upper-case"):
        letter_set_pattern(["A", "b"])
    with pytest.raises(ValueError, match="constraint is"):
        constraint_regex({"regex": "A", "choices": ["A"]})


def test_token_budget_follows_the_paper() -> None:
    assert answer_token_budget(5, multi=False) == 1
    assert answer_token_budget(5, multi=True) == 10
