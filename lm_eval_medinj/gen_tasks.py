"""The ``_gen`` task class: greedy generation under each document's answer constraint.

Every request carries its document's constraint (see :mod:`lm_eval_medinj.constraints`) and
the paper's token budget in its generation kwargs. Before building requests, the task checks
that the model of the running lm-eval evaluation enforces constraints, so a ``_gen`` task never
runs unconstrained in silence.
"""

from __future__ import annotations

import inspect
from typing import Any

from lm_eval.api.instance import Instance

from lm_eval_medinj.authors_protocol import token_mask_constraint
from lm_eval_medinj.constraints import CONSTRAINT_KEY, answer_constraint, answer_token_budget
from lm_eval_medinj.medinj_task import MedinjTask

CONSTRAINED_BACKENDS = ("medinj-hf", "medinj-vllm")
# Class attribute, set to True by every model that enforces CONSTRAINT_KEY.
ENFORCES_CONSTRAINTS_ATTR = "ENFORCES_MEDINJ_CONSTRAINTS"


class ConstraintUnsupportedError(RuntimeError):
    """A ``_gen`` task was given a model that cannot enforce its constraints."""


def _evaluated_model() -> Any | None:
    """The model of the ``lm_eval.evaluator.evaluate`` call on the stack, if there is one."""
    from lm_eval import evaluator

    evaluate_code = inspect.unwrap(evaluator.evaluate).__code__
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code is evaluate_code:
            return frame.f_locals.get("lm")
        frame = frame.f_back
    return None


def require_constraint_backend(task_name: str, model: Any) -> None:
    """Raise :class:`ConstraintUnsupportedError` unless ``model`` enforces constraints."""
    if not getattr(model, ENFORCES_CONSTRAINTS_ATTR, False):
        raise ConstraintUnsupportedError(
            f"task {task_name!r} needs constrained decoding, which the model backend "
            f"{type(model).__name__} does not enforce. Run it with --model "
            f"{' or --model '.join(CONSTRAINED_BACKENDS)} (same model_args as hf / vllm), "
            "or use the choice-scoring task without the _gen suffix."
        )


class ConstrainedGenerationTask(MedinjTask):
    """A generation task whose requests carry a per-document answer constraint.

    Protocol ``paper``: the authors' token mask (:mod:`lm_eval_medinj.authors_protocol`).
    Protocol ``strict``: the sorted letter sets of :mod:`lm_eval_medinj.constraints`.
    """

    def build_all_requests(self, **kwargs: Any) -> None:
        model = _evaluated_model()
        if model is not None:
            require_constraint_backend(self.config.task, model)
        super().build_all_requests(**kwargs)

    def construct_requests(self, doc: dict[str, Any], ctx: Any, **kwargs: Any) -> Instance:
        prefix = "" if kwargs.get("apply_chat_template") else self.config.target_delimiter
        instance = super().construct_requests(doc, ctx, **kwargs)
        multi = doc["task"] == "mcq"
        gen_kwargs = instance.arguments[1]
        if doc["protocol"] == "paper":
            gen_kwargs[CONSTRAINT_KEY] = token_mask_constraint(doc["option_letters"])
        else:
            gen_kwargs[CONSTRAINT_KEY] = answer_constraint(doc["option_letters"], multi, prefix)
        gen_kwargs["max_gen_toks"] = answer_token_budget(len(doc["option_letters"]), multi)
        return instance
