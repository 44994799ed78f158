"""sacreBLEU: corpus BLEU over a task (not a mean of sentence scores) and sentence BLEU per answer.

Every setting but the tokenizer is sacreBLEU's default (mixed case, exponential smoothing,
no effective order for the corpus score; effective order for sentence scores, as
``sacrebleu.sentence_bleu`` does). Scores are on sacreBLEU's 0-100 scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sacrebleu.metrics import BLEU
from sacrebleu.metrics.bleu import BLEUSignature

DEFAULT_TOKENIZE = "intl"


@dataclass(frozen=True)
class CorpusBleu:
    """A corpus BLEU score and the sacreBLEU signature that reproduces it."""

    score: float
    signature: str


def _bleu(tokenize: str, sentence: bool) -> BLEU:
    return BLEU(tokenize=tokenize, effective_order=sentence)


def corpus_bleu(pairs: Iterable[tuple[str, str]], tokenize: str = DEFAULT_TOKENIZE) -> CorpusBleu:
    """Corpus BLEU of (reference, prediction) pairs, one reference each."""
    references, predictions = zip(*pairs, strict=True)
    bleu = _bleu(tokenize, sentence=False)
    score = bleu.corpus_score(list(predictions), [list(references)]).score
    return CorpusBleu(score, str(bleu.get_signature()))


def sentence_bleu(reference: str, prediction: str, tokenize: str = DEFAULT_TOKENIZE) -> float:
    """Smoothed BLEU of one answer against its reference."""
    return _bleu(tokenize, sentence=True).sentence_score(prediction, [reference]).score


def signature(tokenize: str = DEFAULT_TOKENIZE, sentence: bool = False) -> str:
    """The sacreBLEU signature of :func:`corpus_bleu` (or :func:`sentence_bleu`), known before scoring."""
    return str(BLEUSignature({**vars(_bleu(tokenize, sentence)), "num_refs": 1}))
