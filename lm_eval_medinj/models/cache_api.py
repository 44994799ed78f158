"""The one place that names transformers' key/value cache argument.

transformers 5.24 renamed ``past_key_values`` to ``cache`` (model ``forward``, ``generate`` and
the model output) and removes the old name in 5.40; 5.0-5.23 know only the old one. Checked
against transformers 5.19 and 5.24. Code that passes or reads a cache goes through these
helpers, so the rename is handled once; a model that takes neither argument is refused.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import PreTrainedModel

CACHE_ARGUMENTS = ("cache", "past_key_values")


def cache_argument(model: PreTrainedModel) -> str:
    """The name under which ``model.forward`` (and ``generate``) take a key/value cache.

    A PEFT model (``peft=`` in lm-eval's model arguments) passes keywords through to its base
    model, whose ``forward`` names them.
    """
    get_base_model = getattr(model, "get_base_model", None)
    owner = get_base_model() if callable(get_base_model) else model
    parameters = inspect.signature(owner.forward).parameters
    for name in CACHE_ARGUMENTS:
        if name in parameters:
            return name
    raise TypeError(
        f"{type(owner).__name__}.forward takes neither of {CACHE_ARGUMENTS}: this transformers "
        "version or model class is not supported by medinj-hf's cache reuse; pass "
        "reuse_prefix=False, or use lm-eval's hf model"
    )


def with_cache(model: PreTrainedModel, cache: Any, **kwargs: Any) -> dict[str, Any]:
    """``kwargs`` plus ``cache`` under the model's own argument name."""
    return {**kwargs, cache_argument(model): cache}


def output_cache(output: Any) -> Any:
    """The key/value cache of a model output (``cache`` from 5.24, ``past_key_values`` before)."""
    for name in CACHE_ARGUMENTS:
        if output.get(name) is not None:
            return output[name]
    raise TypeError(f"{type(output).__name__} holds no key/value cache (looked for {CACHE_ARGUMENTS})")


def passed_cache(kwargs: dict[str, Any]) -> Any:
    """The cache in a forward call's keyword arguments, under either name (for forward hooks)."""
    return next((kwargs[name] for name in CACHE_ARGUMENTS if kwargs.get(name) is not None), None)
