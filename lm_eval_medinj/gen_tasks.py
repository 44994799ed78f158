"""The ``_gen`` task class: greedy generation under each document's answer constraint.

Every request carries its document's constraint (see :mod:`lm_eval_medinj.constraints`) and
the paper's token budget in its generation kwargs, under the request type
:data:`~lm_eval_medinj.models.constrained.CONSTRAINED_REQUEST`: only a backend that declares
that it enforces constraints (by serving that request type) runs it, any other one refuses
(:mod:`lm_eval_medinj.models.constrained`), so a ``_gen`` task never runs unconstrained.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.instance import Instance

from lm_eval_medinj.authors_protocol import token_mask_constraint
from lm_eval_medinj.constraints import CONSTRAINT_KEY, answer_constraint, answer_token_budget
from lm_eval_medinj.medinj_task import MedinjTask
from lm_eval_medinj.models.constrained import (
    CONSTRAINED_BACKENDS,
    CONSTRAINED_REQUEST,
    ConstraintUnsupportedError,
    install_refusal,
)

__all__ = ["CONSTRAINED_BACKENDS", "CONSTRAINED_REQUEST", "ConstrainedGenerationTask", "ConstraintUnsupportedError"]

install_refusal()


class ConstrainedGenerationTask(MedinjTask):
    """A generation task whose requests carry a per-document answer constraint.

    Protocol ``paper``: the authors' token mask (:mod:`lm_eval_medinj.authors_protocol`).
    Protocol ``strict``: the sorted letter sets of :mod:`lm_eval_medinj.constraints`.
    ``OUTPUT_TYPE`` stays ``generate_until`` (lm-eval's filters and metrics read it); each
    request's ``request_type``, which lm-eval dispatches on, is ``CONSTRAINED_REQUEST``.
    """

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
        # Served only by a backend that declares it enforces the constraint (never generate_until).
        instance.request_type = CONSTRAINED_REQUEST  # type: ignore[assignment]
        return instance
