"""The request type of ``_gen`` tasks, which only a backend that enforces constraints serves.

lm-eval 0.4.13 runs every request with ``getattr(lm, instance.request_type)(requests)``
(``lm_eval.evaluator.evaluate``). A ``_gen`` task's requests carry :data:`CONSTRAINED_REQUEST`
instead of ``generate_until``, so the backend declares that it enforces the constraint by
implementing that method (:class:`EnforcesConstraints`; ``medinj-hf`` and ``medinj-vllm`` do).
Any other backend cannot serve them:

- one derived from lm-eval's ``LM`` (every lm-eval backend, ``hf``, ``vllm``, the API models)
  inherits :func:`refuse_constrained_requests`, which :func:`register_request_type` gives
  ``LM`` (registering the request type; nothing happens at import), and stops with
  :class:`ConstraintUnsupportedError`, naming itself and the way out;
- any other object has no such method: lm-eval stops with an ``AttributeError``.

Nothing here depends on finding the model anywhere else: the refusal is the default, and the
guarantee holds even if installing the clearer message failed.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import hash_args

# The request type of constrained generation, and the method of a backend that serves it.
CONSTRAINED_REQUEST = "generate_until_constrained"
CONSTRAINED_BACKENDS = ("medinj-hf", "medinj-vllm")


class ConstraintUnsupportedError(RuntimeError):
    """A ``_gen`` task was given a model that does not declare that it enforces constraints."""


def refuse_constrained_requests(self: Any, requests: list[Instance], *args: Any, **kwargs: Any) -> list[str]:
    """Every lm-eval backend's :data:`CONSTRAINED_REQUEST` unless it declares one: a refusal."""
    tasks = sorted({str(request.task_name) for request in requests}) or ["a _gen task"]
    raise ConstraintUnsupportedError(
        f"task {', '.join(map(repr, tasks))} needs constrained decoding, which the model backend "
        f"{type(self).__name__} does not declare that it enforces (it has no {CONSTRAINED_REQUEST} method). "
        f"Run it with --model {' or --model '.join(CONSTRAINED_BACKENDS)} (same model_args as hf / vllm; "
        "`lm_eval --model medinj-hf ...` or `medinj eval --model medinj-hf ...`), "
        "or use the choice-scoring task without the _gen suffix."
    )


_registered = False


def register_request_type() -> None:
    """Register :data:`CONSTRAINED_REQUEST` with lm-eval: every backend refuses it by default.

    Gives lm-eval's ``LM`` the refusing method, once per process; a backend that enforces
    constraints overrides it. Called by the start-up hook when lm-eval defines ``LM``, by
    ``medinj eval``, and when a ``_gen`` task is built; never on import.
    """
    global _registered
    if _registered:
        return
    from lm_eval.api.model import LM

    if not hasattr(LM, CONSTRAINED_REQUEST):
        setattr(LM, CONSTRAINED_REQUEST, refuse_constrained_requests)
    _registered = True


class EnforcesConstraints:
    """Mixin of an lm-eval backend whose ``generate_until`` enforces ``CONSTRAINT_KEY``.

    Serving :data:`CONSTRAINED_REQUEST` is the declaration. ``--use_cache`` works as for
    ``generate_until``: lm-eval's ``CachingLM`` passes unknown request types through uncached,
    so answers are read from, and written to, its cache here, under the ``generate_until`` keys.
    """

    def generate_until_constrained(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        cache = getattr(getattr(self, "cache_hook", None), "dbdict", None)
        if cache is None:
            return self.generate_until(requests, disable_tqdm)  # type: ignore[attr-defined]
        keys = [hash_args("generate_until", request.args) for request in requests]
        results: list[str | None] = [
            None if request.args[1].get("do_sample", False) else cache.get(key)
            for request, key in zip(requests, keys, strict=True)
        ]
        missing = [i for i, result in enumerate(results) if result is None]
        if missing:
            outputs = self.generate_until([requests[i] for i in missing], disable_tqdm)  # type: ignore[attr-defined]
            for i, output in zip(missing, outputs, strict=True):
                results[i] = output
                cache[keys[i]] = output
        return [str(result) for result in results]
