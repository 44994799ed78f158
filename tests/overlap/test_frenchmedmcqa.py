"""The audit on the real FrenchMedMCQA data: train.json + dev.json against test.json.

- The exact duplicates equal a recomputation written here from the specification (plain
  ``unicodedata`` normalisation, set intersection).
- Every pair flagged on the real data was read (below, with what the reading showed).
- Near-copies planted in the training pool (case, spacing, punctuation, options reordered, one word
  replaced) are all found at the default thresholds, each with the kind its construction implies.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.overlap.test_side import TestSets
from tests.overlap.conftest import audit, flagged_pairs

# Every (test id, training id) pair the audit flags on the real data at the default settings, by the
# first 12 characters of each id, with its kind and what reading both questions showed.
READ: dict[tuple[str, str], tuple[str, str]] = {
    ("c3ce275d1d8d", "75d6b4ba1eee"): ("exact", "copy: only '0,71' / '0.71' and a space before '?' differ"),
    ("010bdfde9fbc", "ebeae24e8028"): ("ngram", "copy: punctuation, 'Ion' / 'Ions', case; same gold"),
    ("04f8d85bd851", "326c46ef50ec"): ("ngram", "copy: 'Parmi les affirmations suivantes' / 'Parmi ces propositions'"),
    ("0c050786042d", "09654ace0541"): ("ngram", "copy: 'indiquer' / 'indiquez'; same options and gold"),
    ("4ebd4a267a67", "02985e0b26a5"): ("ngram", "copy: 'est' / 'et' typo, ':' / '.'; same options and gold"),
    ("3520963325e9", "75d6b4ba1eee"): (
        "ngram",
        "one-term variant: same case and options, 'la spécificité' asked instead of 'sa sensibilité' (gold c / b)",
    ),
    ("471d8f521e14", "1b875ecdea27"): ("near", "copy: 'sécrétée' / 'secrétée', punctuation; same gold"),
    ("1f4949fd37b7", "3ba7593f6da5"): ("near", "copy: stem reworded, one option reworded; same gold"),
    ("6897359cd28b", "7efeb3bd13a0"): ("near", "copy: 'méthémoglobinisante(s)', 'Le' added to an option; same gold"),
    ("f52d7f2c8c40", "fa131bcabb60"): ("near", "copy: an instruction sentence added before the stem; same gold"),
    ("861899716d8d", "497eb77185ea"): (
        "near",
        "one-term variant: the same five options about 'le ganciclovir (CYMEVAN®)' / 'le foscarnet' (gold differs)",
    ),
}


@cache
def _punctuation_table() -> dict[int, str]:
    return {cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def spec_normalise(text: str) -> str:
    """The specification, written again: NFKC, case-folded, punctuation to spaces, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table()).split())


def spec_words(raw: dict[str, Any]) -> list[str]:
    """The question's words, then its options' words with the options sorted."""
    options = sorted(spec_normalise(text) for text in raw["answers"].values())
    return spec_normalise(raw["question"]).split() + " ".join(options).split()


def _raw(folder: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _short(pairs: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    return {(test[:12], train[:12]): kind for (test, train), kind in pairs.items()}


@pytest.fixture(scope="module")
def real_audit(frenchmedmcqa_dir: Path, fmm_tests: TestSets):
    return audit(frenchmedmcqa_dir, fmm_tests)


def test_exact_duplicates_equal_an_independent_recomputation(frenchmedmcqa_dir: Path, real_audit) -> None:
    assert real_audit.boilerplate_lines == 0  # no line is stripped, so the plain specification applies

    def key(raw: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        return spec_normalise(raw["question"]), tuple(sorted(spec_normalise(t) for t in raw["answers"].values()))

    train = [raw for name in ("train.json", "dev.json") for raw in _raw(frenchmedmcqa_dir, name)]
    train_keys: dict[tuple, set[str]] = {}
    for raw in train:
        train_keys.setdefault(key(raw), set()).add(raw["id"])
    expected = {
        (raw["id"], train_id)
        for raw in _raw(frenchmedmcqa_dir, "test.json")
        for train_id in train_keys.get(key(raw), ())
    }
    exact = {pair for pair, kind in flagged_pairs(real_audit).items() if kind == "exact"}
    assert expected, "the real data holds at least one exact duplicate"
    assert exact == expected


def test_every_pair_flagged_on_the_real_data_was_read(real_audit) -> None:
    found = _short(flagged_pairs(real_audit))
    for pair, kind in sorted(found.items()):
        print(pair, kind, READ.get(pair, ("?", "NOT READ"))[1])
    assert found == {pair: kind for pair, (kind, _) in READ.items()}
    jaccard = {
        (doc.id[:12], real_audit.train.ids[m.train][:12]): m.jaccard
        for doc, matches in zip(real_audit.tests.docs, real_audit.doc_matches(), strict=True)
        for m in matches
    }
    assert all(jaccard[pair] >= real_audit.settings.threshold for pair, (kind, _) in READ.items() if kind == "near")


# --------------------------------------------------------------------------- planted near-copies


def _case(raw: dict[str, Any]) -> dict[str, Any]:
    return raw | {"question": raw["question"].upper(), "answers": {k: v.swapcase() for k, v in raw["answers"].items()}}


def _spacing(raw: dict[str, Any]) -> dict[str, Any]:
    words = raw["question"].split(" ")
    middle = len(words) // 2
    spaced = "  ".join(words[:middle]) + " \n\t " + " ".join(words[middle:]).replace("?", " ?")
    return raw | {"question": "  " + spaced + "   "}


def _punctuation(raw: dict[str, Any]) -> dict[str, Any]:
    question = raw["question"].replace(",", " ;").replace("?", "").replace(":", "") + " !!"
    return raw | {"question": question, "answers": {k: f"« {v} »." for k, v in raw["answers"].items()}}


def _reordered(raw: dict[str, Any]) -> dict[str, Any]:
    letters = sorted(raw["answers"])
    order = letters[1:] + letters[:1]
    answers = {new: raw["answers"][old] for new, old in zip(letters, order, strict=True)}
    correct = sorted(new for new, old in zip(letters, order, strict=True) if old in raw["correct_answers"])
    return raw | {"answers": answers, "correct_answers": correct}


def _all_at_once(raw: dict[str, Any]) -> dict[str, Any]:
    return _reordered(_punctuation(_spacing(_case(raw))))


def _word_replaced(raw: dict[str, Any]) -> dict[str, Any]:
    words = raw["question"].split(" ")
    words[len(words) // 2] = "quelconque"
    return raw | {"question": " ".join(words)}


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _shares(original: dict[str, Any], copy: dict[str, Any]) -> tuple[float, float]:
    """The copy's share of the original's 13-grams and the Jaccard of their word 3-shingles (from the spec)."""
    a, b = spec_words(original), spec_words(copy)
    grams = _ngrams(a, 13)
    share = len(grams & _ngrams(b, 13)) / len(grams) if grams else 0.0
    sa, sb = _ngrams(a, 3), _ngrams(b, 3)
    return share, len(sa & sb) / len(sa | sb)


def _plant(test: list[dict[str, Any]], skip: set[str]) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(test question, planted copy, expected kind): four formatting copies, all four changes at once, and
    one word replaced in a short question (no 13-gram survives: near) and in a long one (ngram)."""
    rng = random.Random(0)
    pool = [raw for raw in test if raw["id"][:12] not in skip]
    rng.shuffle(pool)
    planted = [
        (raw, change(raw), "exact")
        for raw, change in zip(pool, (_case, _spacing, _punctuation, _reordered, _all_at_once), strict=False)
    ]
    rest = pool[len(planted) :]
    near = next(raw for raw in rest if 18 <= len(spec_words(raw)) <= 30 and _shares(raw, _word_replaced(raw))[0] < 0.5)
    assert _shares(near, _word_replaced(near))[1] >= 0.6
    long = next(raw for raw in rest if len(spec_words(raw)) >= 60 and len(raw["question"].split()) >= 30)
    assert _shares(long, _word_replaced(long))[0] >= 0.6
    planted += [(near, _word_replaced(near), "near"), (long, _word_replaced(long), "ngram")]
    return planted


def test_planted_near_copies_are_all_found_with_their_kind(
    frenchmedmcqa_dir: Path, fmm_tests: TestSets, tmp_path: Path
) -> None:
    test = _raw(frenchmedmcqa_dir, "test.json")
    already_flagged = {test_id for test_id, _ in READ}
    planted = _plant(test, already_flagged)
    folder = tmp_path / "frenchmedmcqa"
    folder.mkdir()
    copies = [copy | {"id": f"planted-{kind}-{index}"} for index, (_, copy, kind) in enumerate(planted)]
    (folder / "train.json").write_text(
        json.dumps(_raw(frenchmedmcqa_dir, "train.json") + copies, ensure_ascii=False), encoding="utf-8"
    )
    for name in ("dev.json", "test.json"):
        shutil.copy(frenchmedmcqa_dir / name, folder / name)

    found = flagged_pairs(audit(folder, fmm_tests))

    expected = {(raw["id"], copy["id"]): kind for (raw, _, kind), copy in zip(planted, copies, strict=True)}
    assert {pair: found.get(pair) for pair in expected} == expected
    unplanted = _short({pair: kind for pair, kind in found.items() if not pair[1].startswith("planted-")})
    assert unplanted == {pair: kind for pair, (kind, _) in READ.items()}  # nothing else flagged
