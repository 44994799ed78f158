"""lm-eval hooks for open-ended questions: ``class: !function lm_eval_medinj.oeq.task.OEQTask``.

lm-eval hands ``--metadata`` to ``custom_dataset`` only; per-sample scoring and aggregation
see no settings. :class:`OEQTask` therefore reads them from its own ``config.metadata`` when
lm-eval builds it, checks them before any generation, binds them to the per-sample scorer and
the corpus aggregations, and writes the sacreBLEU signatures and the BERTScore hash into the
task's metadata, which lm-eval copies into the results file under ``configs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from sacrebleu.metrics import BLEU

from lm_eval_medinj.base_task import MedinjTask
from lm_eval_medinj.metadata import MetadataError, family_scorers, family_values
from lm_eval_medinj.oeq.bertscore import BertScoreSettings, bertscore
from lm_eval_medinj.oeq.bleu import DEFAULT_TOKENIZE, corpus_bleu, sentence_bleu, signature
from lm_eval_medinj.oeq.lengths import answer_lengths
from lm_eval_medinj.oeq.meteor import meteor
from lm_eval_medinj.oeq.rouge import rouge

# --metadata key -> OEQSettings / BertScoreSettings field (types: lm_eval_medinj.metadata.KEYS)
_FIELDS: dict[str, str] = {
    "bleu_tokenize": "bleu_tokenize",
    "rouge_stem": "rouge_stem",
    "bertscore_model": "model",
    "bertscore_name": "name",
    "bertscore_layer": "layer",
    "bertscore_rescale": "rescale",
    "bertscore_baseline": "baseline",
    "bertscore_batch_size": "batch_size",
    "bertscore_device": "device",
}
# metric -> higher is better (None: descriptive, neither)
METRICS: dict[str, bool | None] = {
    "bleu": True,
    "bleu_sentence": True,
    "rouge1": True,
    "rouge2": True,
    "rougeL": True,
    "meteor": True,
    "bertscore": True,
    "answer_chars": None,
    "answer_words": None,
}


class SampleScorer(Protocol):
    """An extra scorer of answers (the served judge), built by :func:`~lm_eval_medinj.metadata.family_scorers`."""

    def sample_fields(self, doc: Mapping[str, Any], prediction: str) -> dict[str, Any]: ...

    def metric_list(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class OEQSettings:
    """Metric settings of one OEQ task; every field has a documented default."""

    bleu_tokenize: str = DEFAULT_TOKENIZE
    rouge_stem: bool = False
    bertscore: BertScoreSettings = field(default_factory=BertScoreSettings)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> OEQSettings:
        """Settings from the ``bleu_*``, ``rouge_*`` and ``bertscore_*`` keys of ``--metadata``."""
        top: dict[str, Any] = {}
        encoder: dict[str, Any] = {}
        for key, value in family_values(metadata, "oeq").items():
            (encoder if key.startswith("bertscore_") else top)[_FIELDS[key]] = value
        if top.get("bleu_tokenize", DEFAULT_TOKENIZE) not in BLEU.TOKENIZERS:
            raise MetadataError(
                f"--metadata 'bleu_tokenize' must be one of {', '.join(BLEU.TOKENIZERS)}, got {top['bleu_tokenize']!r}"
            )
        return cls(**top, bertscore=BertScoreSettings(**encoder))

    def signatures(self) -> dict[str, str]:
        """What reproduces the scores: sacreBLEU signatures and bert-score's hash."""
        return {
            "sacrebleu_signature": signature(self.bleu_tokenize),
            "sacrebleu_sentence_signature": signature(self.bleu_tokenize, sentence=True),
            "bertscore_signature": self.bertscore.signature,
        }


def score_sample(
    doc: dict[str, Any], results: list[str], settings: OEQSettings, scorers: Sequence[SampleScorer] = ()
) -> dict[str, Any]:
    """Per-answer scores; ``bleu``, ``bertscore`` and the extra scorers keep the item for the corpus."""
    reference, prediction = doc["reference"], results[0].strip()
    extra = {name: value for scorer in scorers for name, value in scorer.sample_fields(doc, prediction).items()}
    return {
        **extra,
        "bleu": (reference, prediction),
        "bleu_sentence": sentence_bleu(reference, prediction, settings.bleu_tokenize),
        **rouge(reference, prediction, stem=settings.rouge_stem),
        "meteor": meteor(reference, prediction),
        "bertscore": (reference, prediction),
        **answer_lengths(prediction),
    }


def bleu_aggregation(pairs: list[tuple[str, str]], settings: OEQSettings) -> float:
    """Corpus BLEU over every answer of the task (0-100)."""
    return corpus_bleu(pairs, settings.bleu_tokenize).score


def bertscore_aggregation(pairs: list[tuple[str, str]], settings: OEQSettings) -> float:
    """Mean BERTScore F1, all answers scored in batches by one encoder."""
    references, predictions = zip(*pairs, strict=True)
    scores = bertscore(references, predictions, settings.bertscore)
    return sum(scores) / len(scores)


class OEQTask(MedinjTask):
    """A generation task scored with :func:`score_sample` under the settings of its metadata.

    Prompts are the record's own conversation, as for every MedInjection-FR task
    (:class:`MedinjTask`). With ``--metadata '{"judge_url": ...}'`` it also asks a served judge
    (docs/JUDGE.md), which :func:`~lm_eval_medinj.metadata.family_scorers` imports only then:
    the metrics here know the judge only as a :class:`SampleScorer`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        config = dict(config)
        self.settings = OEQSettings.from_metadata(config.get("metadata") or {})
        self.settings.bertscore.check()
        corpus = {"bleu": bleu_aggregation, "bertscore": bertscore_aggregation}
        scorers = family_scorers(config.get("metadata") or {})
        config["process_results"] = partial(score_sample, settings=self.settings, scorers=scorers)
        config["metric_list"] = [
            {
                "metric": name,
                "aggregation": partial(corpus[name], settings=self.settings) if name in corpus else "mean",
                "higher_is_better": higher,
            }
            for name, higher in METRICS.items()
        ] + [entry for scorer in scorers for entry in scorer.metric_list()]
        config["metadata"] = {**(config.get("metadata") or {}), **self.settings.signatures()}
        super().__init__(config=config)
