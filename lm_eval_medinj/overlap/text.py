"""The text a question is matched on, normalised.

A question's text is its clinical case (when it has one), its question and, for multiple-choice
questions, its option texts. Each is normalised the same way: Unicode NFKC, case-folded, every
punctuation character (Unicode category P*) replaced by a space, whitespace collapsed. Accents
are kept ("secrétée" and "sécrétée" differ). The case and question keep their lines; the options
are sorted, so the order they are listed in does not matter.

Lines that recur across many records (an instruction written into every user turn) are
*boilerplate*: they are left out of the matched text, unless every line of the question is
boilerplate. The matched text is then a sequence of words: the kept lines, then the sorted
options.

A question's normalised text is held as one *packed* string (lines, then options, with separators
that ``str.split()`` takes for whitespace), which keeps half a million of them small in memory.
Many questions are normalised at once (:func:`pack_questions`): one NFKC and case-folding pass
over their joined text, punctuation replaced through a lookup table over the code points.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

# str.split() treats these as whitespace, so a normalised line never contains them.
LINES_END = "\x1e"
OPTION_SEP = "\x1f"
LINE_SEP = "\n"
_SPACE = np.uint32(ord(" "))


@cache
def _is_punctuation() -> np.ndarray:
    """For each code point: is it punctuation (Unicode categories Pc, Pd, Ps, Pe, Pi, Pf, Po)?"""
    return np.fromiter(
        (unicodedata.category(chr(cp)).startswith("P") for cp in range(sys.maxunicode + 1)),
        dtype=bool,
        count=sys.maxunicode + 1,
    )


def normalize_lines(lines: Sequence[str]) -> list[str]:
    """Each of ``lines`` (none holding a line break) NFKC-normalised, case-folded, punctuation replaced
    by spaces, whitespace collapsed; accents kept."""
    if not lines:
        return []
    folded = unicodedata.normalize("NFKC", LINE_SEP.join(lines)).casefold()
    points = np.frombuffer(folded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    spaced = np.where(_is_punctuation()[points], _SPACE, points).astype(np.uint32)
    text = spaced.tobytes().decode("utf-32-le", "surrogatepass")
    return [" ".join(line.split()) for line in text.split(LINE_SEP)]


Question = tuple[str, str | None, Iterable[str]]  # question, clinical case, option texts


def pack_questions(questions: Iterable[Question]) -> list[str]:
    """The packed normalised text of each question: its case and question lines, its sorted options."""
    pieces: list[str] = []
    shapes: list[tuple[int, int]] = []
    for question, context, options in questions:
        lines = [*(context or "").splitlines(), *question.splitlines()]
        option_texts = [" ".join(option.splitlines()) for option in options]
        pieces += lines + option_texts
        shapes.append((len(lines), len(option_texts)))
    normalised = normalize_lines(pieces)
    packed, at = [], 0
    for n_lines, n_options in shapes:
        lines = [line for line in normalised[at : at + n_lines] if line]
        options = sorted(option for option in normalised[at + n_lines : at + n_lines + n_options] if option)
        packed.append(LINE_SEP.join(lines) + LINES_END + OPTION_SEP.join(options))
        at += n_lines + n_options
    return packed


def line_keys(packed: str) -> set[int]:
    """The hashes of the distinct lines of a packed text, for counting boilerplate (a line is kept
    as its hash: half a million records hold as many distinct lines)."""
    lines = packed.partition(LINES_END)[0]
    return {hash(line) for line in lines.split(LINE_SEP)} if lines else set()


@dataclass(frozen=True)
class Matched:
    """What the matchers compare, boilerplate lines removed: the exact key (the lines joined by
    spaces, as a line break is whitespace, then the options) and the word sequence."""

    key: str
    words: list[str]


def matched(packed: str, boilerplate: frozenset[int]) -> Matched:
    """The matched text of a packed question: boilerplate lines (by :func:`line_keys` hash) dropped
    unless all its lines are."""
    if boilerplate:
        lines, _, options = packed.partition(LINES_END)
        all_lines = lines.split(LINE_SEP) if lines else []
        kept = [line for line in all_lines if hash(line) not in boilerplate]
        if kept and len(kept) < len(all_lines):
            packed = LINE_SEP.join(kept) + LINES_END + options
    return Matched(packed.replace(LINE_SEP, " "), packed.split())  # the separators are whitespace to split()


def boilerplate_lines(line_counts: dict[int, int], limit: int) -> frozenset[int]:
    """The (hashes of the) lines found in more than ``limit`` records."""
    return frozenset(line for line, count in line_counts.items() if count > limit)


def word_ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct runs of ``n`` consecutive words (none when there are fewer words)."""
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def shingles(words: Sequence[str], size: int) -> set[tuple[str, ...]]:
    """Word ``size``-shingles; a text shorter than ``size`` words is one shingle."""
    if len(words) < size:
        return {tuple(words)} if words else set()
    return word_ngrams(words, size)


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    """Exact Jaccard similarity of two sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
