"""Assertions shared by the backend tests (no backend imports, so every venv can load them)."""

from __future__ import annotations

from typing import Any

import pytest

from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY, TOKEN_MASK, is_token_mask, matches
from lm_eval_medinj.protocol.paper import SEPARATORS
from lm_eval_medinj.protocol.strict import parse_answer


def assert_same_scores(expected: list[tuple[float, bool]], actual: list[tuple[float, bool]]) -> None:
    """Equal lm-eval (log-likelihood, is-greedy) tuples, to float tolerance."""
    assert len(expected) == len(actual)
    for (logprob, greedy), (shared_logprob, shared_greedy) in zip(expected, actual, strict=True):
        assert shared_logprob == pytest.approx(logprob, abs=1e-4, rel=1e-5)
        assert shared_greedy == greedy


def check_gen_samples(results: dict[str, Any], task_names: list[str]) -> int:
    """Every output of every listed task matches its constraint; returns the count.

    Under a grammar (strict protocol) the output also parses; under the authors' token mask it
    holds only option letters, separators and whitespace.
    """
    checked = 0
    for task_name in task_names:
        for sample in results["samples"][task_name]:
            (context, gen_kwargs), output = sample["arguments"][0], sample["resps"][0][0]
            constraint = gen_kwargs[CONSTRAINT_KEY]
            if is_token_mask(constraint):
                allowed = set(constraint[TOKEN_MASK]) | set("".join(SEPARATORS))
                assert set(output) <= allowed, (task_name, gen_kwargs, output)
            else:
                assert matches(constraint, output), (task_name, gen_kwargs, output)
                assert parse_answer(output, sample["doc"]["option_letters"]) is not None
            assert context.count("<|im_start|>assistant") <= 1, "chat template applied twice"
            checked += 1
    return checked
