"""Shared-prefix helpers: token trees, head-sharing batches, cached heads equal to a full forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from lm_eval_medinj.models.shared_prefix import (
    batch_inputs,
    build_prefix_tree,
    common_prefix_length,
    prefix_batches,
    prefix_cache,
    reusable_prefix_length,
    score_trees,
    supports_prefix_cache,
)


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 2], [1, 2]]) == 0


def test_prefix_batches_keep_families_apart_and_put_longest_first() -> None:
    head_a, head_b = list(range(20)), list(range(100, 120))
    contexts = [
        head_a + [1],
        head_b + [1, 2, 3],
        head_a + [2, 3, 4, 5],
        [999, 1],  # shares nothing: pooled
        head_b + [9],
        head_a + [7, 7],
    ]
    batches = prefix_batches(contexts, batch_size=2)
    assert sorted(i for batch in batches for i in batch) == list(range(len(contexts)))
    assert batches == [[2, 5], [0], [1, 4], [3]]
    assert all(len(batch) <= 2 for batch in batches)


def test_prefix_batches_with_short_shared_heads_is_a_length_sort() -> None:
    contexts = [[1, 2, 3], [1, 2, 3, 4, 5], [1, 9], [1, 2, 3, 4]]
    assert prefix_batches(contexts, batch_size=3) == [[1, 3, 0], [2]]


def test_reusable_prefix_leaves_every_row_a_token_and_skips_short_heads() -> None:
    head = list(range(30))
    assert reusable_prefix_length([head + [1, 2], head + [3]]) == 30
    assert reusable_prefix_length([head, head + [3]]) == 29
    assert reusable_prefix_length([head[:10] + [1], head[:10] + [2]]) == 0
    assert reusable_prefix_length([head[:10] + [1], head[:10] + [2]], min_shared=4) == 10


def test_batch_inputs_leave_the_cached_head_out_but_keep_its_columns() -> None:
    trees = [build_prefix_tree([5, 6, 7, 8], [[1], [2, 3]]), build_prefix_tree([5, 6, 9], [[1]])]
    ids, positions, mask = batch_inputs(trees, pad_token_id=0, dtype=torch.float32, prefix_length=2)
    assert ids.tolist() == [[7, 8, 2], [9, 0, 0]]
    assert positions.tolist() == [[2, 3, 4], [2, 0, 0]]
    assert mask.shape == (2, 1, 3, 5)
    visible = (mask == 0).int()[:, 0].tolist()
    assert visible[0] == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert visible[1][0] == [1, 1, 1, 0, 0]


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: Path) -> AutoModelForCausalLM:
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_tiny_llama_supports_prefix_cache(tiny_model: AutoModelForCausalLM) -> None:
    assert supports_prefix_cache(tiny_model)


def test_scores_with_a_cached_head_equal_scores_without(tiny_model: AutoModelForCausalLM) -> None:
    generator = torch.Generator().manual_seed(0)
    head = torch.randint(5, 200, (24,), generator=generator).tolist()
    contexts = [head + torch.randint(5, 200, (n,), generator=generator).tolist() for n in (7, 3, 11)]
    continuations = [[11], [12, 13], [12, 14, 15]]
    trees = [build_prefix_tree(context, continuations) for context in contexts]

    def scores(prefix_length: int) -> list[list[tuple[float, bool]]]:
        ids, positions, mask = batch_inputs(trees, 0, torch.float32, prefix_length=prefix_length)
        first_kept = min(tree.context_length for tree in trees) - 1
        cache = prefix_cache(tiny_model, head[:prefix_length], len(trees)) if prefix_length else None
        with torch.no_grad():
            logits = tiny_model(
                input_ids=ids,
                position_ids=positions,
                attention_mask=mask,
                past_key_values=cache,
                use_cache=cache is not None,
                logits_to_keep=prefix_length + ids.shape[1] - first_kept,
            ).logits
        return score_trees(logits, first_kept, trees, None)

    full, cached = scores(0), scores(reusable_prefix_length(contexts))
    assert reusable_prefix_length(contexts) == 24
    for full_row, cached_row in zip(full, cached, strict=True):
        for (full_logprob, full_greedy), (cached_logprob, cached_greedy) in zip(full_row, cached_row, strict=True):
            assert cached_logprob == pytest.approx(full_logprob, abs=1e-4)
            assert cached_greedy == full_greedy
