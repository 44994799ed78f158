"""Word n-gram overlap: which training records contain a large share of a test question's n-grams.

lm-eval's decontamination (``lm_eval/decontamination``, after GPT-3) flags a test document when
*any* of its 13-grams occurs in the training data, and a text of fewer than 13 words has no
13-gram, so it is never flagged that way. Exam questions share long stock phrasings ("parmi les
propositions suivantes, indiquer celle(s) qui est (sont) exacte(s)"), so one shared 13-gram flags
unrelated questions. Here a (test question, training record) pair is flagged when the record
contains at least ``share`` of the question's n-grams (one at least); ``share = 0`` is lm-eval's
rule. As in lm-eval, a question shorter than ``n`` words has no n-gram (the exact and near
matchers still see it).

An n-gram found in more than ``boilerplate`` training records, or in more than ``boilerplate``
test questions, is boilerplate: it counts neither as shared nor in the question's total.

Training records are streamed: :meth:`GramIndex.observe` keeps, for each batch, the (record,
n-gram) pairs whose n-gram is one of a test question's; :meth:`GramIndex.pairs` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lm_eval_medinj.overlap.hashing import HashSet, distinct_pairs, window_hashes


@dataclass(frozen=True)
class GramPairs:
    """Flagged (training record, test question) pairs: shared n-grams, share, one shared n-gram."""

    train: np.ndarray
    test: np.ndarray
    shared: np.ndarray
    share: np.ndarray
    evidence_gram: np.ndarray  # a slot of GramIndex


class GramIndex:
    """The distinct n-grams of the test questions, and the training records that contain them."""

    def __init__(self, mixed: np.ndarray, lengths: np.ndarray, n: int) -> None:
        self.n = n
        self.n_tests = len(lengths)
        tests, hashes = window_hashes(mixed, lengths, n)
        # where each n-gram first occurs (its test question and word position): the evidence
        grams, first, slots = np.unique(hashes, return_index=True, return_inverse=True)
        self.grams = HashSet(grams)
        slots = slots.astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        self.first_test = tests[first]
        self.first_position = _window_starts(lengths, n)[first] - starts[self.first_test]
        self.pair_test, self.pair_slot = distinct_pairs(tests, slots)
        self.test_df = np.bincount(self.pair_slot, minlength=len(grams))
        self._slot_tests = self.pair_test[np.argsort(self.pair_slot, kind="stable")]
        self._slot_start = np.cumsum(self.test_df) - self.test_df
        self._seen_train: list[np.ndarray] = []
        self._seen_slot: list[np.ndarray] = []

    def observe(self, first_record: int, mixed: np.ndarray, lengths: np.ndarray) -> None:
        """Keep the (record, n-gram) pairs of one batch of training records whose n-gram a test has."""
        if len(self.grams) == 0:
            return
        records, hashes = window_hashes(mixed, lengths, self.n)
        hit, slots = self.grams.find(hashes)
        records, slots = distinct_pairs(records[hit] + first_record, slots)
        self._seen_train.append(records)
        self._seen_slot.append(slots)

    def boilerplate(self, limit: int) -> np.ndarray:
        """Whether each n-gram is in more than ``limit`` training records or test questions."""
        slots = np.concatenate(self._seen_slot) if self._seen_slot else np.empty(0, dtype=np.int64)
        train_df = np.bincount(slots, minlength=len(self.grams))
        return (train_df > limit) | (self.test_df > limit)

    def pairs(self, share: float, limit: int) -> GramPairs:
        """The (training record, test question) pairs sharing at least ``share`` of the question's
        non-boilerplate n-grams (and at least one)."""
        empty = np.empty(0, dtype=np.int64)
        if not self._seen_slot or len(self.grams) == 0:
            return GramPairs(empty, empty, empty, np.empty(0), empty)
        boiler = self.boilerplate(limit)
        totals = np.bincount(self.pair_test[~boiler[self.pair_slot]], minlength=self.n_tests)
        train = np.concatenate(self._seen_train)
        slots = np.concatenate(self._seen_slot)
        keep = ~boiler[slots]
        train, slots = train[keep], slots[keep]
        # each (record, n-gram) pair -> one (record, test question) pair per question holding the n-gram
        counts = self.test_df[slots]
        offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        tests = self._slot_tests[np.repeat(self._slot_start[slots], counts) + offsets]
        train, slots = np.repeat(train, counts), np.repeat(slots, counts)
        key = train * self.n_tests + tests
        order = np.lexsort((slots, key))
        key, slots = key[order], slots[order]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else empty
        shared = np.diff(np.concatenate([starts, [len(key)]]))
        pair_key, evidence = key[starts], slots[starts]
        pair_train, pair_test = pair_key // self.n_tests, pair_key % self.n_tests
        fraction = shared / np.maximum(totals[pair_test], 1)
        flagged = (shared >= 1) & (fraction >= share)
        return GramPairs(pair_train[flagged], pair_test[flagged], shared[flagged], fraction[flagged], evidence[flagged])

    def evidence(self, slot: int, test_words: list[list[str]]) -> str:
        """The words of one n-gram, read from the test question where it first occurs."""
        test, position = int(self.first_test[slot]), int(self.first_position[slot])
        return " ".join(test_words[test][position : position + self.n])


def _window_starts(lengths: np.ndarray, n: int) -> np.ndarray:
    """The word offset (in the concatenation) of each run kept by :func:`window_hashes`."""
    total = int(lengths.sum())
    if total < n:
        return np.empty(0, dtype=np.int64)
    count = total - n + 1
    text = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    starts = np.arange(count, dtype=np.int64)
    return starts[starts + n <= ends[text[:count]]]
