"""ROUGE-1/2/L F-measures with rouge-score and a Unicode-aware French tokenizer.

rouge-score's default tokenizer keeps only ``[a-z0-9]``, so "sévère" becomes "s", "v",
"re"; it is never used here. ROUGE-L is the sentence-level LCS (``rougeL``, not
``rougeLsum``). Scores are on a 0-1 scale.
"""

from __future__ import annotations

from functools import cache

from rouge_score.rouge_scorer import RougeScorer

from lm_eval_medinj.oeq.text import FrenchTokenizer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@cache
def rouge_scorer(stem: bool = False) -> RougeScorer:
    """A scorer for :data:`ROUGE_TYPES` on whole French words (or their Snowball stems)."""
    return RougeScorer(list(ROUGE_TYPES), tokenizer=FrenchTokenizer(use_stemmer=stem))


def rouge(reference: str, prediction: str, stem: bool = False) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of one answer against its reference."""
    scores = rouge_scorer(stem).score(reference, prediction)
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}
