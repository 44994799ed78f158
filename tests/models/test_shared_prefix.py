"""Shared-prefix helpers: token trees, head-sharing batches, cached heads equal to a full forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from lm_eval_medinj.models.cache_api import with_cache
from lm_eval_medinj.models.shared_prefix import (
    HeadCache,
    batch_inputs,
    build_prefix_tree,
    common_prefix_length,
    prefix_batches,
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


def test_prefix_batches_split_a_family_joined_by_a_common_system_prompt() -> None:
    system = list(range(500, 520))
    single = [system + list(range(20)) + [i, 1, 1][: 1 + i % 3] for i in range(4)]
    multiple = [system + list(range(100, 120)) + [i, 2][: 1 + i % 2] for i in range(3)]
    batches = prefix_batches(single + multiple, batch_size=8)
    assert sorted(map(sorted, batches)) == [[0, 1, 2, 3], [4, 5, 6]]


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


def _tree_scores(
    model: AutoModelForCausalLM, trees: list, heads: HeadCache | None, shared: int
) -> tuple[list[list[tuple[float, bool]]], int]:
    """Scores of ``trees``, reusing up to ``shared`` head tokens from ``heads``; and the tokens reused."""
    cache, shared = heads.for_batch(trees[0].tokens[:shared], len(trees)) if heads else (None, 0)
    ids, positions, mask = batch_inputs(trees, 0, torch.float32, prefix_length=shared)
    first_kept = min(tree.context_length for tree in trees) - 1
    with torch.no_grad():
        logits = model(
            input_ids=ids,
            position_ids=positions,
            attention_mask=mask,
            **with_cache(model, cache, use_cache=cache is not None),
            logits_to_keep=shared + ids.shape[1] - first_kept,
        ).logits
    return score_trees(logits, first_kept, trees, None), shared


def _assert_same(expected: list[list[tuple[float, bool]]], actual: list[list[tuple[float, bool]]]) -> None:
    for expected_row, actual_row in zip(expected, actual, strict=True):
        for (logprob, greedy), (actual_logprob, actual_greedy) in zip(expected_row, actual_row, strict=True):
            assert actual_logprob == pytest.approx(logprob, abs=1e-4)
            assert actual_greedy == greedy


def test_scores_with_a_cached_head_equal_scores_without(tiny_model: AutoModelForCausalLM) -> None:
    generator = torch.Generator().manual_seed(0)

    def tokens(n: int) -> list[int]:
        return torch.randint(5, 200, (n,), generator=generator).tolist()

    head = tokens(24)
    continuations = [[11], [12, 13], [12, 14, 15]]
    first = [build_prefix_tree(head + tokens(n), continuations) for n in (7, 3, 11)]
    # A second batch of the family shares 24 head tokens, only 20 of them with the first: the
    # cached head is cut to those 20, not computed again.
    second_head = head[:20] + [201, 202, 203, 204]
    second = [build_prefix_tree(second_head + tokens(n), continuations) for n in (9, 5)]
    heads = HeadCache(tiny_model)
    contexts = [tree.tokens[: tree.context_length] for tree in first]
    assert reusable_prefix_length(contexts) == 24
    assert reusable_prefix_length([tree.tokens[: tree.context_length] for tree in second]) == 24
    first_scores, first_reused = _tree_scores(tiny_model, first, heads, 24)
    second_scores, second_reused = _tree_scores(tiny_model, second, heads, 24)
    assert (first_reused, second_reused) == (24, 20)
    _assert_same(_tree_scores(tiny_model, first, None, 0)[0], first_scores)
    _assert_same(_tree_scores(tiny_model, second, None, 0)[0], second_scores)
