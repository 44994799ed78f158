"""Words to integers, and every run of ``n`` consecutive words of many texts to a 64-bit hash at once.

Each distinct word gets an integer id (:class:`Vocabulary`, ids in order of first sight, so a run
is reproducible), mixed to 64 random-looking bits (the SplitMix64 finaliser). The hash of a run of
``n`` words is a polynomial over its mixed ids, modulo 2**64, finalised again: ``n`` vectorised
passes over all the words of a batch of texts, instead of one Python step per run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: the polynomial base
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, a bijection of uint64 that spreads every input bit."""
    z = values.astype(np.uint64) + _MULTIPLIER
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class Vocabulary:
    """Word -> id, ids given in order of first sight."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def encode(self, texts: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """The mixed ids of every word of ``texts``, concatenated, and each text's length."""
        ids = self._ids
        flat = [ids.setdefault(word, len(ids)) for words in texts for word in words]
        lengths = np.fromiter((len(words) for words in texts), dtype=np.int64, count=len(texts))
        return splitmix64(np.asarray(flat, dtype=np.uint64)), lengths


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
    """Word ``size``-shingles as hashes (:func:`window_hashes`); a shorter, non-empty text is one
    shingle: the hash of its words (as :func:`lm_eval_medinj.overlap.text.shingles`)."""
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


def distinct_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs, sorted by first then second."""
    if len(first) == 0:
        return first, second
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return first[keep], second[keep]
