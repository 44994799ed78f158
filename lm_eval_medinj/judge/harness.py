"""Judge OEQ answers from inside lm-eval, for users who serve their judge (OpenAI-compatible).

    lm_eval ... --tasks medinj_oeq_native --metadata '{"judge_url": "http://HOST:8000/v1",
        "judge_model": "google/medgemma-27b-text-it", "judge_cache": "judge.sqlite"}'

Keys: ``judge_url`` (turns the judge on), ``judge_model`` (served name, default MedGemma),
``judge_prompt`` (paper), ``judge_api`` (chat / completions), ``judge_top_logprobs`` (20),
``judge_tokenizer`` (completions only), ``judge_concurrency`` (8), ``judge_timeout`` (120 s per
attempt), ``judge_max_retries`` (5), ``judge_cache`` (SQLite file; default in memory),
``judge_calibration`` (a meta_eval.py calibration JSON); the schema of every key, and the error on a
misspelt one, are :mod:`lm_eval_medinj.metadata`'s. The client is ``judge/score.py``'s: retries,
each judgement stored as it is made; an aggregation with items left unjudged raises
:class:`~lm_eval_medinj.judge.failures.JudgeFailedError` (never a mean over part of the items).

A task wires it as ``OEQTask`` does with BERTScore: :meth:`HarnessJudge.sample_fields` in
``process_results`` keeps each (question, reference, answer), the question and reference read as
the authors did (:func:`~lm_eval_medinj.judge.items.question_and_reference`), and the aggregations
from :meth:`HarnessJudge.metric_list` score them all at once, batched and cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_medinj.errors import one_line
from lm_eval_medinj.judge.backends import OpenAIJudge
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import Calibration
from lm_eval_medinj.judge.items import JudgeItem, question_and_reference
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.scoring import score_items
from lm_eval_medinj.metadata import MetadataError, family_settings

Triple = tuple[str, str, str]


def _number(settings: Mapping[str, Any], key: str, kind: type[int] | type[float], least: float) -> Any:
    """A numeric ``--metadata`` value (a number, or a string that spells one) of at least ``least``."""
    try:
        value = kind(settings[key])
    except (TypeError, ValueError):
        value = None
    if value is None or not least <= value < float("inf"):
        raise MetadataError(f"--metadata {key!r} must be a number of at least {least:g}, got {settings[key]!r}")
    return value


class HarnessJudge:
    """A served judge bound to one task's ``--metadata``."""

    def __init__(self, metadata: Mapping[str, Any]):
        # Checked, with the schema's defaults (lm_eval_medinj.metadata): a misspelt key stops here.
        settings = family_settings(metadata, "judge")
        self.prompt = load_prompt(str(settings["judge_prompt"]))
        self.backend = OpenAIJudge(
            str(settings["judge_model"]),
            str(settings["judge_url"]),
            api=str(settings["judge_api"]),
            top_logprobs=_number(settings, "judge_top_logprobs", int, 1),
            tokenizer=settings["judge_tokenizer"],
            concurrency=_number(settings, "judge_concurrency", int, 1),
            timeout=_number(settings, "judge_timeout", float, 1e-3),
            max_retries=_number(settings, "judge_max_retries", int, 0),
        )
        self.cache = JudgementCache(Path(str(settings["judge_cache"])))
        path = settings["judge_calibration"]
        self.calibration = Calibration.load(Path(path)) if path else None
        if self.calibration is not None:
            self.calibration.check(self.backend.judge_id, self.prompt.prompt_id)

    def __deepcopy__(self, memo: dict[int, Any]) -> HarnessJudge:
        """lm-eval deep-copies task configs; every copy shares this judge and its open cache."""
        return self

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> HarnessJudge | None:
        """The judge when ``judge_url`` is set, else ``None``; a misspelt key raises either way."""
        return cls(metadata) if family_settings(metadata, "judge").get("judge_url") else None

    @property
    def metrics(self) -> tuple[str, ...]:
        names = ("judge_equivalent", "judge_p_equivalent")
        return (*names, "judge_p_calibrated") if self.calibration is not None else names

    def sample_fields(self, doc: Mapping[str, Any], prediction: str) -> dict[str, Triple]:
        """Per-sample values for ``process_results``: the item, scored at aggregation."""
        where = f"lm-eval doc {doc.get('id')!r}"
        triple = (*question_and_reference(dict(doc), where), prediction.strip())
        return dict.fromkeys(self.metrics, triple)

    def aggregate(self, triples: Sequence[Triple], metric: str) -> float:
        """Mean verdict, P(equivalent) or calibrated P over the task (each item scored once)."""
        items = [JudgeItem(str(i), *triple) for i, triple in enumerate(triples)]
        names = [f"lm-eval sample {i} (question {one_line(item.question, 60)!r})" for i, item in enumerate(items)]
        run = score_items(items, self.backend, self.prompt, self.cache, batch_size=32, progress=False, names=names)
        p = run.complete_p()
        if metric == "judge_equivalent":
            return float((p >= 0.5).mean())
        if metric == "judge_p_calibrated" and self.calibration is not None:
            return float(np.mean(self.calibration.apply(p)))
        return float(p.mean())

    def metric_list(self) -> list[dict[str, Any]]:
        """lm-eval ``metric_list`` entries for the judge metrics."""
        return [
            {"metric": name, "aggregation": partial(self.aggregate, metric=name), "higher_is_better": True}
            for name in self.metrics
        ]
