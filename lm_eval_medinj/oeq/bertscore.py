"""BERTScore F1 with bert-score: one encoder per run, batched, offline from a local folder.

Default: ``bert-base-multilingual-cased``, layer 9, rescaled with the French baseline that
bert-score ships for it: the model, layer and baseline of ``bert_score.score(..., lang="fr",
rescale_with_baseline=True)``, with the fast tokenizer. Any encoder works from a local folder; its layer
and baseline are looked up under its *name* (``name``, else the folder's or Hub id's last
part). Scores are on a 0-1 scale (rescaled scores can fall below 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import bert_score
from bert_score.utils import get_hash, model2layers

DEFAULT_MODEL = "bert-base-multilingual-cased"
LANG = "fr"
SHIPPED_BASELINES = Path(bert_score.__file__).parent / "rescale_baseline" / LANG


class BertScoreSettingsError(ValueError):
    """BERTScore settings that cannot be used (unknown layer, missing baseline or encoder)."""


@dataclass(frozen=True)
class BertScoreSettings:
    """Which encoder scores the answers and how; see ``docs/OEQ.md``."""

    model: str = DEFAULT_MODEL
    name: str | None = None
    layer: int | None = None
    rescale: bool = True
    baseline: str | None = None
    batch_size: int = 32
    device: str | None = None

    @property
    def model_name(self) -> str:
        """The name that selects bert-score's tuned layer and French baseline."""
        return self.name or Path(self.model.rstrip("/")).name

    @property
    def num_layers(self) -> int:
        """The explicit layer, else the one bert-score tuned for this model."""
        if self.layer is not None:
            return self.layer
        if self.model_name not in model2layers:
            raise BertScoreSettingsError(
                f"bert-score has no tuned layer for {self.model_name!r}; set bertscore_layer "
                "(or bertscore_name to the encoder's Hub name)"
            )
        return model2layers[self.model_name]

    @property
    def baseline_path(self) -> Path | None:
        """The rescaling baseline file, or ``None`` when scores are not rescaled."""
        if not self.rescale:
            return None
        path = Path(self.baseline) if self.baseline else SHIPPED_BASELINES / f"{self.model_name}.tsv"
        if not path.is_file():
            shipped = ", ".join(sorted(p.stem for p in SHIPPED_BASELINES.glob("*.tsv")))
            raise BertScoreSettingsError(
                f"no French rescaling baseline at {path} (bert-score ships French baselines for: "
                f"{shipped}); set bertscore_baseline to a baseline file or bertscore_rescale to false"
            )
        return path

    @property
    def signature(self) -> str:
        """bert-score's reproducibility hash, written with the model's name rather than its path."""
        return get_hash(
            self.model_name,
            self.num_layers,
            False,
            self.rescale,
            use_custom_baseline=self.baseline is not None,
            use_fast_tokenizer=True,
        )

    def check(self) -> None:
        """Fail now, not after generation, when the layer, baseline or encoder is unavailable."""
        from transformers import AutoConfig

        _ = (self.num_layers, self.baseline_path)  # each raises when unavailable
        try:
            AutoConfig.from_pretrained(self.model)
        except OSError as error:
            raise BertScoreSettingsError(
                f"BERTScore encoder {self.model!r} cannot be loaded ({error}); offline, set "
                "bertscore_model to a local folder holding the model and its tokenizer"
            ) from error


@cache
def scorer(settings: BertScoreSettings) -> bert_score.BERTScorer:
    """The encoder for ``settings``, loaded once per process."""
    baseline = settings.baseline_path
    return bert_score.BERTScorer(
        model_type=settings.model,
        num_layers=settings.num_layers,
        batch_size=settings.batch_size,
        device=settings.device,
        lang=LANG,
        rescale_with_baseline=settings.rescale,
        baseline_path=str(baseline) if baseline else None,
        use_fast_tokenizer=True,
    )


def bertscore(
    references: Sequence[str], predictions: Sequence[str], settings: BertScoreSettings = BertScoreSettings()
) -> list[float]:
    """BERTScore F1 of each prediction against its reference, in batches of ``settings.batch_size``.

    An empty text has no token to match: its raw F1 is 0 (bert-score's own convention, which
    its tokenizer calls no longer reach under transformers 5), rescaled like any other score.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references for {len(predictions)} predictions")
    scored = [i for i, pair in enumerate(zip(references, predictions, strict=True)) if all(t.strip() for t in pair)]
    baseline = scorer(settings).baseline_vals[2].item() if settings.rescale else 0.0
    f1 = [(0.0 - baseline) / (1 - baseline)] * len(predictions)
    if scored:
        _, _, scores = scorer(settings).score(
            [predictions[i] for i in scored], [references[i] for i in scored], batch_size=settings.batch_size
        )
        for i, score in zip(scored, scores.tolist(), strict=True):
            f1[i] = score
    return f1
