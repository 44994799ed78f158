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

A record's normalised text is held as one string (:func:`pack`), which keeps half a million of
them small in memory.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

# str.split() treats these as whitespace, so a normalised line never contains them.
_LINES_END = "\x1e"
_OPTION_SEP = "\x1f"
_LINE_SEP = "\n"


@cache
def _punctuation_table() -> dict[int, str]:
    """Every Unicode punctuation code point (categories Pc, Pd, Ps, Pe, Pi, Pf, Po) to a space."""
    return {cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def normalize(text: str) -> str:
    """NFKC, case-folded, punctuation to spaces, whitespace collapsed; accents kept."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.translate(_punctuation_table()).split())


@dataclass(frozen=True)
class QuestionText:
    """A question's normalised lines (clinical case, then question) and sorted option texts."""

    lines: tuple[str, ...]
    options: tuple[str, ...]

    @classmethod
    def of(cls, question: str, context: str | None = None, options: Iterable[str] = ()) -> QuestionText:
        lines = [normalize(line) for part in (context or "", question) for line in part.splitlines()]
        normalised_options = (normalize(option) for option in options)
        return cls(tuple(line for line in lines if line), tuple(sorted(o for o in normalised_options if o)))

    def pack(self) -> str:
        """One string holding both parts (:func:`unpack` inverts it)."""
        return _LINE_SEP.join(self.lines) + _LINES_END + _OPTION_SEP.join(self.options)


def unpack(packed: str) -> QuestionText:
    lines, _, options = packed.partition(_LINES_END)
    return QuestionText(
        tuple(lines.split(_LINE_SEP)) if lines else (), tuple(options.split(_OPTION_SEP)) if options else ()
    )


def packed_lines(packed: str) -> list[str]:
    """The distinct lines of a packed text (for counting boilerplate)."""
    lines = packed.partition(_LINES_END)[0]
    return list(set(lines.split(_LINE_SEP))) if lines else []


@dataclass(frozen=True)
class Matched:
    """What the matchers compare: the exact key and the word sequence, boilerplate lines removed."""

    key: str
    words: list[str]


def matched(packed: str, boilerplate: frozenset[str] | set[str]) -> Matched:
    """The matched text of a packed question: boilerplate lines dropped unless all its lines are."""
    text = unpack(packed)
    lines = [line for line in text.lines if line not in boilerplate] or list(text.lines)
    key = _LINE_SEP.join(lines) + _LINES_END + _OPTION_SEP.join(text.options)
    words = [word for line in lines for word in line.split()]
    words += [word for option in text.options for word in option.split()]
    return Matched(key, words)


def boilerplate_lines(line_counts: dict[str, int], limit: int) -> frozenset[str]:
    """The lines found in more than ``limit`` records."""
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
