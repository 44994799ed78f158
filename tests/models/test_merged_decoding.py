"""Batches prefilled apart and decoded together: grouping, stacking, logits equal to each batch's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

from lm_eval_medinj.models.cache_api import output_cache, with_cache
from lm_eval_medinj.models.merged_decoding import (
    PrefilledBatch,
    decoding_groups,
    mask_positions,
    stack_prefilled,
    supports_stacked_decoding,
)


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: Path) -> AutoModelForCausalLM:
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_decoding_groups_gather_consecutive_batches_up_to_the_row_limit() -> None:
    batches = [[0, 1, 2], [3, 4], [5], [6, 7, 8, 9, 10], [11]]
    widths = [10] * len(batches)
    unbounded = 10**9
    assert decoding_groups(batches, widths, 6, unbounded) == [[[0, 1, 2], [3, 4], [5]], [[6, 7, 8, 9, 10], [11]]]
    assert decoding_groups(batches, widths, 4, unbounded) == [
        [[0, 1, 2]],
        [[3, 4], [5]],
        [[6, 7, 8, 9, 10]],
        [[11]],
    ]
    assert decoding_groups(batches, widths, 0, unbounded) == [[batch] for batch in batches]


def test_decoding_groups_keep_the_stacked_cache_within_the_token_limit() -> None:
    batches = [[0, 1], [2, 3], [4, 5], [6, 7]]
    # The group's cache is its rows times its widest batch: 2 x 50, 4 x 50, then 6 x 50 = 300.
    assert decoding_groups(batches, [50, 40, 30, 30], 100, 240) == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    assert decoding_groups(batches, [20, 20, 20, 60], 100, 120) == [[[0, 1], [2, 3], [4, 5]], [[6, 7]]]
    # A batch over the limit by itself stays alone.
    assert decoding_groups(batches, [500, 10, 10, 10], 100, 240) == [[[0, 1]], [[2, 3], [4, 5], [6, 7]]]


def test_mask_positions_count_real_tokens_only() -> None:
    mask = torch.tensor([[1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]])
    assert mask_positions(mask).tolist() == [[0, 1, 0, 0, 2, 3], [0, 0, 0, 0, 1, 2]]


def test_tiny_llama_supports_stacked_decoding_and_sliding_windows_do_not(tiny_model: AutoModelForCausalLM) -> None:
    assert supports_stacked_decoding(tiny_model)
    config = MistralConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, sliding_window=8,
    )  # fmt: skip
    assert not supports_stacked_decoding(MistralForCausalLM(config))


def _left_padded(generator: torch.Generator, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(lengths)
    ids = torch.zeros((len(lengths), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, width - length :] = torch.randint(5, 200, (length,), generator=generator)
        mask[row, width - length :] = 1
    return ids, mask


def test_stacked_batches_predict_what_each_batch_predicts_alone(tiny_model: AutoModelForCausalLM) -> None:
    generator = torch.Generator().manual_seed(0)
    batches = [_left_padded(generator, lengths) for lengths in ([9, 4, 7], [13, 13], [5])]
    expected, prefilled = [], []
    with torch.no_grad():
        for ids, mask in batches:
            positions = mask_positions(mask)
            expected.append(tiny_model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1])
            cache = output_cache(
                tiny_model(
                    input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], use_cache=True
                )
            )
            prefilled.append(PrefilledBatch(ids, mask, cache))
        stacked = stack_prefilled(iter(prefilled), tiny_model.config, rows=6, width=13, new_tokens=3, pad_token_id=0)
        assert stacked.input_ids.shape == stacked.attention_mask.shape == (6, 13)
        assert int(stacked.cache.get_seq_length()) == 12
        logits = tiny_model(
            input_ids=stacked.input_ids[:, -1:],
            attention_mask=stacked.attention_mask,
            position_ids=mask_positions(stacked.attention_mask)[:, -1:],
            **with_cache(tiny_model, stacked.cache, use_cache=True),
        ).logits[:, -1]
    torch.testing.assert_close(logits, torch.cat(expected), atol=1e-5, rtol=1e-5)


def test_stacking_fewer_rows_than_announced_is_an_error(tiny_model: AutoModelForCausalLM) -> None:
    ids, mask = _left_padded(torch.Generator().manual_seed(1), [4, 6])
    with torch.no_grad():
        cache = output_cache(tiny_model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], use_cache=True))
    with pytest.raises(ValueError, match="expected 3 prefilled rows, got 2"):
        stack_prefilled(
            [PrefilledBatch(ids, mask, cache)], tiny_model.config, rows=3, width=6, new_tokens=1, pad_token_id=0
        )
