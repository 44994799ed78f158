"""Prefill in batches, decode together: one ``generate`` for several prefilled batches.

A decoding step costs about as much for eight rows as for sixty-four (it reads every weight
once whatever the batch), while a prompt forward costs per token. So constrained answers of
several tokens are generated from batches stacked after their prefill: each batch computes its
prompts (but the last token) into a key/value cache, which is copied, left-padded to the widest
batch, into one preallocated static cache; ``generate`` then continues all rows at once. The
static cache is written in place, where a dynamic one would copy itself at every step.
Positions follow the attention mask, so a row generates what it would have in its own batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel, StaticCache
from transformers.cache_utils import Cache, StaticLayer

Row = TypeVar("Row")


@dataclass
class PrefilledBatch:
    """Left-padded prompts whose key/value cache holds every column but the last."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    cache: Cache


def supports_stacked_decoding(model: PreTrainedModel) -> bool:
    """Whether ``model``'s static cache is plain full attention, with a length counter that can be set."""
    try:
        layers = StaticCache(config=model.config, max_cache_len=1).layers
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return bool(layers) and all(
        type(layer) is StaticLayer and isinstance(getattr(layer, "cumulative_length", None), torch.Tensor)
        for layer in layers
    )


def decoding_groups(
    batches: Sequence[list[Row]], widths: Sequence[int], max_rows: int, max_cache_tokens: int
) -> list[list[list[Row]]]:
    """Consecutive ``batches`` gathered into groups to decode together.

    A group keeps at most ``max_rows`` rows, and its stacked cache (rows x the widest of the
    batches' ``widths``, prompt plus answer columns) at most ``max_cache_tokens`` tokens; a
    batch over either limit stays alone.
    """
    groups: list[list[list[Row]]] = []
    rows = width = 0
    for batch, batch_width in zip(batches, widths, strict=True):
        grown_rows, grown_width = rows + len(batch), max(width, batch_width)
        if groups and grown_rows <= max_rows and grown_rows * grown_width <= max_cache_tokens:
            groups[-1].append(batch)
            rows, width = grown_rows, grown_width
        else:
            groups.append([batch])
            rows, width = len(batch), batch_width
    return groups


def mask_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The position ids ``generate`` derives from a left-padded attention mask."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def stack_prefilled(
    batches: Iterable[PrefilledBatch],
    config: PretrainedConfig,
    rows: int,
    width: int,
    new_tokens: int,
    pad_token_id: int,
) -> PrefilledBatch:
    """``rows`` prefilled rows as one batch, left-padded to ``width`` columns.

    Their cache is static, with room for ``new_tokens`` more.

    ``batches`` may be a generator: each batch's own cache can go once it is copied.
    """
    cache = StaticCache(config=config, max_cache_len=width + new_tokens)
    input_ids, attention_mask = [], []
    row = 0
    for batch in batches:
        size, columns = batch.input_ids.shape
        for stacked, own in zip(cache.layers, batch.cache.layers, strict=True):
            if not row:  # allocate each layer where its own states live (layers may span devices)
                heads, _, keys_dim = own.keys.shape[1:]
                stacked.lazy_initialization(
                    own.keys.new_empty((rows, heads, 0, keys_dim)),
                    own.values.new_empty((rows, heads, 0, own.values.shape[-1])),
                )
            stacked.keys[row : row + size, :, width - columns : width - 1] = own.keys
            stacked.values[row : row + size, :, width - columns : width - 1] = own.values
        input_ids.append(F.pad(batch.input_ids, [width - columns, 0], value=pad_token_id))
        attention_mask.append(F.pad(batch.attention_mask, [width - columns, 0], value=0))
        row += size
    if row != rows:
        raise ValueError(f"expected {rows} prefilled rows, got {row}")
    for layer in cache.layers:
        layer.cumulative_length.fill_(width - 1)
    return PrefilledBatch(torch.cat(input_ids), torch.cat(attention_mask), cache)
