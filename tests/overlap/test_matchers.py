"""The matchers against computations written here from their definitions: normalisation with
``str.translate``, n-gram shares and Jaccard similarities with Python sets over every pair."""

from __future__ import annotations

import random
import sys
import unicodedata
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medinj.overlap.hashing import HashSet, Vocabulary, distinct_shingles, shingle_hashes, window_hashes
from lm_eval_medinj.overlap.near import MISS_TARGET, NearIndex, lsh_parameters
from lm_eval_medinj.overlap.ngrams import GramIndex
from lm_eval_medinj.overlap.text import (
    boilerplate_lines,
    line_keys,
    matched,
    normalize_lines,
    pack_questions,
)


@cache
def _table() -> dict[int, str]:
    return {cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def spec_normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_table()).split())


# --------------------------------------------------------------------------- text


def test_normalisation_keeps_accents_and_drops_case_punctuation_and_spacing() -> None:
    assert normalize_lines(["  Quelle est l'ÉTIOLOGIE ?\tLa « ﬁèvre »…  ", "sécrétée", "secrétée", "ＡＢＣ ①"]) == [
        "quelle est l étiologie la fièvre",
        "sécrétée",
        "secrétée",  # accents kept
        "abc 1",  # NFKC: full-width letters, a circled digit
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            )
        ),
        max_size=6,
    )
)
def test_batched_normalisation_equals_the_specification_line_by_line(lines: list[str]) -> None:
    assert normalize_lines(lines) == [spec_normalise(line) for line in lines]


def test_options_are_matched_in_any_order_and_line_breaks_are_whitespace() -> None:
    first, second = pack_questions(
        [
            ("Quel examen ?\nEn urgence.", None, ["Troponine", "ECG", "Scanner"]),
            ("QUEL examen  ? En urgence", None, ["scanner", "troponine", "E.C.G."]),
        ]
    )
    assert matched(first, frozenset()).words[:4] == ["quel", "examen", "en", "urgence"]
    assert matched(first, frozenset()).key != matched(second, frozenset()).key  # "ecg" / "e c g"
    again = pack_questions([("quel examen en urgence", None, ["scanner", "ECG", "troponine"])])[0]
    assert matched(first, frozenset()).key == matched(again, frozenset()).key


def test_boilerplate_lines_are_dropped_unless_they_are_all_the_question() -> None:
    instruction = "Réponds à la question suivante."
    texts = pack_questions(
        [(f"{instruction}\nQuestion {i} sur le rein ?", None, ["A", "B"]) for i in range(3)]
        + [(instruction, None, ["A", "B"])]
    )
    counts: dict[int, int] = {}
    for text in texts:
        for key in line_keys(text):
            counts[key] = counts.get(key, 0) + 1
    boiler = boilerplate_lines(counts, 2)
    assert len(boiler) == 1
    assert matched(texts[0], boiler).words == ["question", "0", "sur", "le", "rein", "a", "b"]
    assert matched(texts[3], boiler).words == ["réponds", "à", "la", "question", "suivante", "a", "b"]


# --------------------------------------------------------------------------- hashing


def _corpus(seed: int, count: int, vocabulary: int = 6, longest: int = 16) -> list[list[str]]:
    rng = random.Random(seed)
    return [[f"w{rng.randrange(vocabulary)}" for _ in range(rng.randrange(longest))] for _ in range(count)]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_window_hashes_are_one_to_one_with_the_word_runs(n: int) -> None:
    texts = _corpus(1, 60)
    mixed, lengths = Vocabulary().encode(texts)
    owners, hashes = window_hashes(mixed, lengths, n)
    runs = [(i, tuple(words[j : j + n])) for i, words in enumerate(texts) for j in range(len(words) - n + 1)]
    assert owners.tolist() == [i for i, _ in runs]
    by_hash: dict[int, set[tuple[str, ...]]] = {}
    for value, (_, run) in zip(hashes.tolist(), runs, strict=True):
        by_hash.setdefault(value, set()).add(run)
    assert all(len(found) == 1 for found in by_hash.values())
    assert len(by_hash) == len({run for _, run in runs})


def test_short_texts_are_one_shingle_and_shingles_are_distinct_per_text() -> None:
    texts = [["a"], ["a", "b"], [], ["a", "b", "c", "a", "b", "c"]]
    mixed, lengths = Vocabulary().encode(texts)
    owners, hashes = distinct_shingles(*shingle_hashes(mixed, lengths, 3))
    assert np.bincount(owners, minlength=4).tolist() == [1, 1, 0, 3]  # abc, bca, cab


def test_hash_set_finds_exactly_the_members() -> None:
    rng = np.random.default_rng(0)
    members = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    queries = np.concatenate([members[::3], rng.integers(0, 2**63, 5000, dtype=np.uint64)])
    positions, slots = HashSet(members, bits=10).find(queries)
    assert positions.tolist() == np.flatnonzero(np.isin(queries, members)).tolist()
    assert (HashSet(members).values[slots] == queries[positions]).all()


# --------------------------------------------------------------------------- n-grams


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def brute_force_shares(
    train: list[list[str]], tests: list[list[str]], n: int, share: float, limit: int
) -> dict[tuple[int, int], tuple[int, float]]:
    train_grams, test_grams = [_ngrams(w, n) for w in train], [_ngrams(w, n) for w in tests]
    everything = set().union(*train_grams, *test_grams)
    boiler = {
        g for g in everything if sum(g in s for s in train_grams) > limit or sum(g in s for s in test_grams) > limit
    }
    flagged = {}
    for t, grams in enumerate(test_grams):
        kept = grams - boiler
        for r, record in enumerate(train_grams):
            shared = len(kept & record)
            if shared and shared / len(kept) >= share:
                flagged[(r, t)] = (shared, shared / len(kept))
    return flagged


@pytest.mark.parametrize(("n", "share", "limit"), [(3, 0.5, 100), (3, 0.0, 100), (2, 0.3, 20), (4, 1.0, 100)])
def test_ngram_shares_equal_a_brute_force_count(n: int, share: float, limit: int) -> None:
    train = _corpus(2, 120)
    tests = _corpus(3, 40) + [train[i][2:10] for i in range(0, 60, 3)]  # some held whole by a record
    vocabulary = Vocabulary()
    index = GramIndex(*vocabulary.encode(tests), n)
    for start in range(0, len(train), 25):  # streamed in batches, as the audit does
        index.observe(start, *vocabulary.encode(train[start : start + 25]))
    pairs = index.pairs(share, limit)
    found = {
        (r, t): (s, f)
        for r, t, s, f in zip(
            pairs.train.tolist(), pairs.test.tolist(), pairs.shared.tolist(), pairs.share.tolist(), strict=True
        )
    }
    assert found == brute_force_shares(train, tests, n, share, limit)  # the same integer ratios
    assert found  # the tiny vocabulary makes overlaps
    if limit < 100:  # some n-grams are boilerplate, some are not
        assert 0 < index.boilerplate(limit).sum() < len(index.grams)
    for slot, test in zip(pairs.evidence_gram.tolist(), pairs.test.tolist(), strict=True):
        assert tuple(index.evidence(slot, tests).split()) in _ngrams(tests[test], n)


# --------------------------------------------------------------------------- near-duplicates


@pytest.mark.parametrize("threshold", [0.3, 0.55, 0.8])
def test_lsh_bands_meet_the_miss_target_with_the_most_rows(threshold: float) -> None:
    p = lsh_parameters(threshold, 128)
    assert p.miss_probability == pytest.approx((1 - threshold**p.rows) ** p.bands)
    assert p.miss_probability <= MISS_TARGET
    assert p.bands * p.rows <= 128
    more = p.rows + 1
    assert (1 - threshold**more) ** (128 // more) > MISS_TARGET


def _edited(words: list[str], rng: random.Random, edits: int) -> list[str]:
    words = list(words)
    for _ in range(edits):
        words[rng.randrange(len(words))] = f"x{rng.randrange(10**6)}"
    return words


def test_near_index_proposes_every_pair_at_the_threshold_and_verifies_exactly() -> None:
    rng = random.Random(4)
    base = [[f"w{rng.randrange(300)}" for _ in range(rng.randrange(8, 40))] for _ in range(150)]
    tests = base[:100]
    train = [_edited(words, rng, rng.randrange(0, 6)) for words in base] + _corpus(5, 200, vocabulary=300, longest=40)
    vocabulary = Vocabulary()
    index = NearIndex(tests, *vocabulary.encode(tests), threshold=0.55, num_perm=128)
    proposed = set(index.candidates(*vocabulary.encode(train)))
    shingles = lambda w: _ngrams(w, 3) if len(w) >= 3 else {tuple(w)}  # noqa: E731
    truth = {
        (r, t): len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b))
        for r, a in enumerate(train)
        for t, b in enumerate(tests)
        if a and b
    }
    close = {pair for pair, j in truth.items() if j >= 0.55}
    assert len(close) > 50
    assert close <= proposed
    assert {pair for pair in proposed if index.verified(train[pair[0]], pair[1]) is not None} == close
    assert all(index.verified(train[r], t) == pytest.approx(truth[(r, t)]) for r, t in close)
