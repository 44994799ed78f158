"""The multiple-choice tasks' hooks: choice scoring, the parse of generated answers, and ``_gen``.

- **Choice scoring** (no suffix): every valid answer is a candidate; the prediction is the most
  probable one, each scored followed by its end (:class:`~lm_eval_medinj.base_task.MedinjTask`).
- **Generation** (``_gen``, ``_greedy``): the document's protocol parses the answer
  (:mod:`lm_eval_medinj.protocol`).
- :class:`ConstrainedGenerationTask` (``_gen``): every request carries its protocol's constraint
  and the paper's token budget, under the request type
  :data:`~lm_eval_medinj.models.constrained.CONSTRAINED_REQUEST`, which only a backend that
  declares that it enforces constraints serves (:mod:`lm_eval_medinj.models.constrained`): a
  ``_gen`` task never runs unconstrained.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lm_eval.api.instance import Instance

from lm_eval_medinj.base_task import MedinjTask
from lm_eval_medinj.mcq.answers import candidate_answers
from lm_eval_medinj.mcq.metrics import exact_match, hamming_score
from lm_eval_medinj.models.constrained import (
    CONSTRAINED_BACKENDS,
    CONSTRAINED_REQUEST,
    ConstraintUnsupportedError,
    register_request_type,
)
from lm_eval_medinj.protocol import protocol_named
from lm_eval_medinj.protocol.strict import parse_answer

__all__ = [
    "CONSTRAINED_BACKENDS",
    "CONSTRAINED_REQUEST",
    "ConstrainedGenerationTask",
    "ConstraintUnsupportedError",
    "doc_to_choice",
    "process_choice_results",
    "process_generation_results",
]


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """Every valid answer: each letter (MCQU) or each non-empty sorted letter subset (MCQ)."""
    return candidate_answers(doc["option_letters"], multi=doc["task"] == "mcq")


def _scores(doc: dict[str, Any], predicted: frozenset[str] | None) -> dict[str, float]:
    scores = {"em": exact_match(doc["gold"], predicted)}
    if doc["task"] == "mcq":
        scores["hamming"] = hamming_score(doc["gold"], predicted)
    return scores


def process_choice_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, float]:
    """Exact choice scoring: the prediction is the candidate with the highest log-likelihood.

    Each candidate was scored with its end (see :class:`~lm_eval_medinj.base_task.MedinjTask`),
    so this is the most probable complete answer.
    """
    choices = doc_to_choice(doc)
    loglikelihoods = [result[0] for result in results]
    best = max(range(len(choices)), key=loglikelihoods.__getitem__)
    return _scores(doc, parse_answer(choices[best], doc["option_letters"]))


def process_generation_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """The document's protocol parses the generated answer (the authors' parse by default)."""
    protocol = protocol_named(doc["protocol"])
    return _scores(doc, protocol.parse(results[0], doc["option_letters"], doc["task"] == "mcq"))


class ConstrainedGenerationTask(MedinjTask):
    """A generation task whose requests carry a per-document answer constraint.

    ``OUTPUT_TYPE`` stays ``generate_until`` (lm-eval's filters and metrics read it); each
    request's ``request_type``, which lm-eval dispatches on, is ``CONSTRAINED_REQUEST``. Building
    one registers that request type with lm-eval (:func:`register_request_type`).
    """

    CONSTRAINED: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        register_request_type()
        super().__init__(config=config, **kwargs)

    def construct_requests(self, doc: dict[str, Any], ctx: Any, **kwargs: Any) -> Instance:
        instance = super().construct_requests(doc, ctx, **kwargs)
        # Served only by a backend that declares it enforces the constraint (never generate_until).
        instance.request_type = CONSTRAINED_REQUEST  # type: ignore[assignment]
        return instance
