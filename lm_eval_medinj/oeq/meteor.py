"""METEOR (Banerjee & Lavie, 2005) for French: exact, then French-stem unigram matching.

No WordNet: the synonym stage of NLTK's METEOR needs English WordNet data, which is neither
French nor downloadable offline, so there is none. The rest follows NLTK's
``single_meteor_score``, with its defaults: words are matched stage by stage, the
hypothesis read from its last word back, each word taking the last unmatched occurrence
in the reference; ``Fmean = P·R / (α·P + (1-α)·R)`` with α = 0.9 (Banerjee & Lavie's
10PR / (R + 9P)); ``penalty = γ·(chunks / matches)^β`` with γ = 0.5, β = 3;
``score = Fmean·(1 - penalty)``. The score equals NLTK's ``single_meteor_score`` given the
same words, ``SnowballStemmer("french")`` and a WordNet without synonyms. Scores are 0-1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from lm_eval_medinj.oeq.text import stem, words

ALPHA = 0.9
BETA = 3.0
GAMMA = 0.5

Indexed = list[tuple[int, str]]


def _match_stage(
    hypothesis: Indexed, reference: Indexed, key: Callable[[str], str]
) -> tuple[list[tuple[int, int]], Indexed, Indexed]:
    """Pairs (hypothesis index, reference index) of equal keys, and the words left unmatched."""
    positions: dict[str, list[int]] = defaultdict(list)
    for j, (_, word) in enumerate(reference):
        positions[key(word)].append(j)
    matches: list[tuple[int, int]] = []
    used_hyp: set[int] = set()
    used_ref: set[int] = set()
    for i in reversed(range(len(hypothesis))):
        candidates = positions.get(key(hypothesis[i][1]))
        if candidates:
            j = candidates.pop()
            used_hyp.add(i)
            used_ref.add(j)
            matches.append((hypothesis[i][0], reference[j][0]))
    return (
        matches,
        [pair for i, pair in enumerate(hypothesis) if i not in used_hyp],
        [pair for j, pair in enumerate(reference) if j not in used_ref],
    )


def align(hypothesis: list[str], reference: list[str]) -> list[tuple[int, int]]:
    """Unigram alignment, exact matches first, then Snowball-stem matches, sorted by hypothesis index."""
    hyp: Indexed = list(enumerate(hypothesis))
    ref: Indexed = list(enumerate(reference))
    exact, hyp, ref = _match_stage(hyp, ref, key=str)
    stemmed, _, _ = _match_stage(hyp, ref, key=stem)
    return sorted(exact + stemmed)


def count_chunks(matches: list[tuple[int, int]]) -> int:
    """Runs of matches adjacent in both the hypothesis and the reference."""
    return 1 + sum(1 for (i, j), (k, m) in zip(matches, matches[1:], strict=False) if (k, m) != (i + 1, j + 1))


def meteor_tokens(
    reference: list[str], hypothesis: list[str], alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA
) -> float:
    """METEOR of tokenized, lower-cased words; 0.0 when nothing matches."""
    matches = align(hypothesis, reference)
    if not matches:
        return 0.0
    precision = len(matches) / len(hypothesis)
    recall = len(matches) / len(reference)
    fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (count_chunks(matches) / len(matches)) ** beta
    return fmean * (1 - penalty)


def meteor(reference: str, prediction: str) -> float:
    """METEOR of one answer against its reference, on the words of :func:`~.text.words`."""
    return meteor_tokens(words(reference), words(prediction))
