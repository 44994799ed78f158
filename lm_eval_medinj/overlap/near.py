"""Near-duplicates: Jaccard similarity of word 3-shingle sets, candidates by MinHash LSH (datasketch).

The test questions are indexed in a ``datasketch.MinHashLSH``; each training record queries it.
A candidate pair is reported only when the exact Jaccard similarity of the two shingle sets (the
word tuples themselves, :func:`lm_eval_medinj.overlap.text.jaccard`) reaches the threshold.

The LSH bands are chosen so that a pair exactly at the threshold is missed with probability at
most :data:`MISS_TARGET` (above it, less): the most rows per band (fewest false candidates)
whose miss probability ``(1 - t**rows) ** bands`` meets the target.

Before querying, a record is dropped when fewer than ``threshold`` of its shingles occur in any
test question at all: Jaccard ``J(A, B) >= t`` needs ``|A & B| >= t * |A|``, so no pair is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lm_eval_medinj.overlap.hashing import HashSet, distinct_pairs, distinct_shingles, shingle_hashes
from lm_eval_medinj.overlap.text import jaccard, shingles

SHINGLE_SIZE = 3
MISS_TARGET = 0.001
MINHASH_SEED = 1
_LOW32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class LshParameters:
    bands: int
    rows: int
    miss_probability: float  # of a pair exactly at the threshold


def lsh_parameters(threshold: float, num_perm: int) -> LshParameters:
    """The most rows per band whose miss probability at ``threshold`` is at most MISS_TARGET."""
    best = LshParameters(num_perm, 1, (1 - threshold) ** num_perm)
    for rows in range(1, num_perm // 2 + 1):
        bands = num_perm // rows
        miss = (1 - threshold**rows) ** bands
        if miss <= MISS_TARGET:
            best = LshParameters(bands, rows, miss)
    return best


def _identity(value: int) -> int:
    """The shingles are hashed already (hashing.shingle_hashes, folded to 32 bits)."""
    return value


def _fold32(hashes: np.ndarray) -> list[int]:
    return ((hashes ^ (hashes >> np.uint64(32))) & _LOW32).tolist()


def _by_text(texts: np.ndarray, hashes: np.ndarray, count: int) -> list[np.ndarray]:
    bounds = np.searchsorted(texts, np.arange(count + 1))
    return [hashes[bounds[i] : bounds[i + 1]] for i in range(count)]


class NearIndex:
    """MinHash LSH over the test questions' shingle sets."""

    def __init__(
        self,
        test_words: Sequence[Sequence[str]],
        mixed: np.ndarray,
        lengths: np.ndarray,
        threshold: float,
        num_perm: int,
    ) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.parameters = lsh_parameters(threshold, num_perm)
        self._test_words = test_words
        self._test_shingles: dict[int, set[tuple[str, ...]]] = {}
        texts, hashes = distinct_pairs(*shingle_hashes(mixed, lengths, SHINGLE_SIZE))
        self._union = HashSet(hashes)
        from datasketch import LeanMinHash, MinHash, MinHashLSH  # the study extra's; medinj overlap checks it

        self._minhash: Any = MinHash
        self.lsh = MinHashLSH(
            threshold=threshold, num_perm=num_perm, params=(self.parameters.bands, self.parameters.rows)
        )
        per_test = _by_text(texts, hashes, len(lengths))
        indexed = [i for i, values in enumerate(per_test) if len(values)]
        sketches = MinHash.generator(
            (_fold32(per_test[i]) for i in indexed), num_perm=num_perm, seed=MINHASH_SEED, hashfunc=_identity
        )
        with self.lsh.insertion_session() as session:
            for test, sketch in zip(indexed, sketches, strict=True):
                session.insert(test, LeanMinHash(sketch), check_duplication=False)

    def candidates(self, mixed: np.ndarray, lengths: np.ndarray) -> list[tuple[int, int]]:
        """(record in the batch, test question) pairs the LSH proposes for a batch of records."""
        texts, hashes = distinct_shingles(*shingle_hashes(mixed, lengths, SHINGLE_SIZE))
        sizes = np.bincount(texts, minlength=len(lengths))
        hits = np.bincount(texts[self._union.find(hashes)[0]], minlength=len(lengths))
        survivors = np.flatnonzero((sizes > 0) & (hits >= self.threshold * sizes - 1e-9))
        if len(survivors) == 0:
            return []
        per_record = _by_text(texts, hashes, len(lengths))
        sketches = self._minhash.generator(
            (_fold32(per_record[i]) for i in survivors), num_perm=self.num_perm, seed=MINHASH_SEED, hashfunc=_identity
        )
        return [
            (int(record), test)
            for record, sketch in zip(survivors, sketches, strict=True)
            for test in self.lsh.query(sketch)
        ]

    def verified(self, words: Sequence[str], test: int) -> float | None:
        """The exact Jaccard similarity of a record and a test question, when at the threshold."""
        if test not in self._test_shingles:
            self._test_shingles[test] = shingles(self._test_words[test], SHINGLE_SIZE)
        similarity = jaccard(shingles(words, SHINGLE_SIZE), self._test_shingles[test])
        return similarity if similarity >= self.threshold else None
