"""Canonical answers, candidate enumeration and the strict parser."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from lm_eval_medinj.mcq.answers import candidate_answers, format_answer
from lm_eval_medinj.mcq.metrics import exact_match
from lm_eval_medinj.protocol.strict import parse_answer

OPTIONS = ["A", "B", "C", "D", "E"]
letter_sets = st.sets(st.sampled_from(OPTIONS), min_size=1)


def test_format_answer_sorts_and_deduplicates() -> None:
    assert format_answer(["C", "A", "C"]) == "A, C"
    assert format_answer(["B"]) == "B"


def test_candidates_single_and_multi() -> None:
    assert candidate_answers(["A", "B", "C", "D"], multi=False) == ["A", "B", "C", "D"]
    multi = candidate_answers(OPTIONS, multi=True)
    assert len(multi) == 31 and len(set(multi)) == 31
    assert multi[:6] == ["A", "B", "C", "D", "E", "A, B"] and multi[-1] == "A, B, C, D, E"


@given(letter_sets)
def test_canonical_answer_parses_back_to_the_same_set(letters: set[str]) -> None:
    assert parse_answer(format_answer(letters), OPTIONS) == frozenset(letters)


@given(letter_sets, st.sampled_from([",", ", ", " ", " ,  ", ";"]), st.sampled_from(["", " ", ".", "\n"]))
def test_separator_variants_parse(letters: set[str], separator: str, tail: str) -> None:
    assert parse_answer(separator.join(sorted(letters)) + tail, OPTIONS) == frozenset(letters)


@given(letter_sets, st.sampled_from("FGHXYZ"))
def test_stray_letter_never_scores(letters: set[str], stray: str) -> None:
    answer = format_answer([*letters, stray])
    assert parse_answer(answer, OPTIONS) is None
    assert exact_match(letters | {stray}, parse_answer(answer, OPTIONS)) == 0.0


@given(st.text(alphabet=string.ascii_letters + string.digits + " ,.;()'éè\n", max_size=30))
def test_parse_result_is_none_or_option_subset(text: str) -> None:
    parsed = parse_answer(text, OPTIONS)
    assert parsed is None or (parsed and parsed <= set(OPTIONS))


def test_prose_and_decorated_answers_are_wrong() -> None:
    for text in ["La réponse est A", "(A)", "a", "A, A", "A et C", "", "AC", "A,", "Réponse : B"]:
        assert parse_answer(text, OPTIONS) is None, text
