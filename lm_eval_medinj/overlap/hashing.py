"""Words to integers, and every run of ``n`` consecutive words of many texts to a 64-bit hash at once.

Each distinct word gets an integer id (:class:`Vocabulary`, ids in order of first sight, so a run
is reproducible), mixed to 64 random-looking bits (the SplitMix64 finaliser). The hash of a run of
``n`` words is a polynomial over its mixed ids, modulo 2**64, finalised again: ``n`` vectorised
passes over all the words of a batch of texts, instead of one Python step per run.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: the polynomial base
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
SHINGLE_BITS = 51  # shingle hashes keep their top bits, so (text, hash) packs into one uint64
TEXT_BITS = 64 - SHINGLE_BITS


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, a bijection of uint64 that spreads every input bit."""
    z = values.astype(np.uint64) + _MULTIPLIER
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class Vocabulary:
    """Word -> id, ids given in order of first sight."""

    def __init__(self) -> None:
        self._ids: defaultdict[str, int] = defaultdict(itertools.count().__next__)

    def encode(self, texts: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """The mixed ids of every word of ``texts``, concatenated, and each text's length."""
        flat = np.fromiter(map(self._ids.__getitem__, itertools.chain.from_iterable(texts)), dtype=np.uint64)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return splitmix64(flat), lengths


def window_hashes(mixed: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every run of ``n`` consecutive words inside one text: (the text's index, the run's hash).

    A text of fewer than ``n`` words has no run.
    """
    total = len(mixed)
    if total < n or n < 1:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    count = total - n + 1
    hashes = np.zeros(count, dtype=np.uint64)
    for offset in range(n):
        hashes = hashes * _MULTIPLIER + mixed[offset : offset + count]
    text = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    valid = np.arange(count, dtype=np.int64) + n <= ends[text[:count]]
    return text[:count][valid], splitmix64(hashes[valid])


def shingle_hashes(mixed: np.ndarray, lengths: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Word ``size``-shingles as SHINGLE_BITS-bit hashes (:func:`window_hashes`, top bits); a shorter,
    non-empty text is one shingle: the hash of its words (as :func:`lm_eval_medinj.overlap.text.shingles`)."""
    texts, hashes = _shingle_hashes(mixed, lengths, size)
    return texts, hashes >> np.uint64(64 - SHINGLE_BITS)


def _shingle_hashes(mixed: np.ndarray, lengths: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    texts, hashes = window_hashes(mixed, lengths, size)
    short = np.flatnonzero((lengths > 0) & (lengths < size))
    if len(short) == 0:
        return texts, hashes
    starts = np.cumsum(lengths) - lengths
    extra = []
    for index in short:
        value = np.zeros(1, dtype=np.uint64)
        for token in mixed[starts[index] : starts[index] + lengths[index]]:
            value = value * _MULTIPLIER + token
        extra.append(splitmix64(value)[0])
    order = np.argsort(np.concatenate([texts, short]), kind="stable")
    return (
        np.concatenate([texts, short])[order],
        np.concatenate([hashes, np.asarray(extra, dtype=np.uint64)])[order],
    )


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (numpy 2.4's ``np.unique`` takes a hashing path, slower here than a sort)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def distinct_shingles(texts: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (text, shingle hash) pairs of fewer than 2**TEXT_BITS texts, sorted: one sort of
    one packed key instead of :func:`distinct_pairs`'s two-key sort."""
    if len(texts) and int(texts.max()) >= 1 << TEXT_BITS:
        raise ValueError(f"at most {1 << TEXT_BITS} texts at once")
    keys = sorted_unique((texts.astype(np.uint64) << np.uint64(SHINGLE_BITS)) | hashes)
    return (keys >> np.uint64(SHINGLE_BITS)).astype(np.int64), keys & np.uint64((1 << SHINGLE_BITS) - 1)


class HashSet:
    """A sorted set of 64-bit hashes, looked up through a bitmap of their low bits first."""

    def __init__(self, values: np.ndarray, bits: int = 24) -> None:
        self.values = sorted_unique(values)
        self._mask = np.uint64((1 << bits) - 1)
        self._bitmap = np.zeros(1 << bits, dtype=bool)
        self._bitmap[(self.values & self._mask).astype(np.intp)] = True

    def __len__(self) -> int:
        return len(self.values)

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions in ``hashes`` of the members, and each one's index in ``values``."""
        maybe = np.flatnonzero(self._bitmap[(hashes & self._mask).astype(np.intp)])
        if len(maybe) == 0 or len(self.values) == 0:
            return maybe[:0], maybe[:0]
        slots = np.minimum(np.searchsorted(self.values, hashes[maybe]), len(self.values) - 1)
        hit = self.values[slots] == hashes[maybe]
        return maybe[hit], slots[hit]


def distinct_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs, sorted by first then second."""
    if len(first) == 0:
        return first, second
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return first[keep], second[keep]
