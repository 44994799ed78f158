"""Shared-prefix scoring: a context and all its continuations in one forward pass.

The context is laid out once, followed by the distinct proper prefixes of the continuations
as a token tree ("A", ",", " C"... share their common heads). Each tree token attends to the
whole context and to its own ancestors, at the position it would have in context +
continuation, through a 4-D attention mask. The logits that predict each continuation token
are then those of lm-eval's one-sequence-per-continuation forward, for a fraction of its cost:
multi-answer questions need about one prefill instead of one per candidate subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PrefixTree:
    """One context and its continuations, flattened to a single input sequence."""

    tokens: list[int]
    positions: list[int]
    context_length: int
    # Tree tokens each tree token attends to (itself included), as sequence indices.
    ancestors: dict[int, list[int]]
    # Per continuation, the sequence index whose logits predict each of its tokens.
    predictors: list[list[int]]
    continuations: list[list[int]]


def build_prefix_tree(context: Sequence[int], continuations: Sequence[Sequence[int]]) -> PrefixTree:
    """Lay out ``context`` then the tree of the continuations' proper prefixes."""
    tokens = list(context)
    positions = list(range(len(context)))
    ancestors: dict[int, list[int]] = {}
    node_of: dict[tuple[int, ...], int] = {}
    predictors = []
    for continuation in continuations:
        predicting = [len(context) - 1]
        for depth in range(len(continuation) - 1):
            prefix = tuple(continuation[: depth + 1])
            if prefix not in node_of:
                node = len(tokens)
                node_of[prefix] = node
                tokens.append(continuation[depth])
                positions.append(len(context) + depth)
                ancestors[node] = (ancestors[node_of[prefix[:-1]]] if depth else []) + [node]
            predicting.append(node_of[prefix])
        predictors.append(predicting)
    return PrefixTree(
        tokens=tokens,
        positions=positions,
        context_length=len(context),
        ancestors=ancestors,
        predictors=predictors,
        continuations=[list(continuation) for continuation in continuations],
    )


def batch_inputs(
    trees: Sequence[PrefixTree], pad_token_id: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, position ids and additive 4-D attention mask for ``trees``."""
    length = max(len(tree.tokens) for tree in trees)
    input_ids = torch.full((len(trees), length), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((len(trees), length), dtype=torch.long)
    allowed = torch.zeros((len(trees), 1, length, length), dtype=torch.bool)
    for row, tree in enumerate(trees):
        size, context = len(tree.tokens), tree.context_length
        input_ids[row, :size] = torch.tensor(tree.tokens)
        position_ids[row, :size] = torch.tensor(tree.positions)
        allowed[row, 0, :context, :context] = torch.ones(context, context, dtype=torch.bool).tril()
        for node, visible in tree.ancestors.items():
            allowed[row, 0, node, :context] = True
            allowed[row, 0, node, visible] = True
        padding = torch.arange(size, length)
        allowed[row, 0, padding, padding] = True  # padding sees itself only: no empty softmax row
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return input_ids, position_ids, mask


def score_trees(
    logits: torch.Tensor, first_kept: int, trees: Sequence[PrefixTree], softmax_dtype: torch.dtype | None
) -> list[list[tuple[float, bool]]]:
    """lm-eval's (log-likelihood, is-greedy) of every continuation of every tree.

    ``logits`` holds the positions from ``first_kept`` to the end of the padded batch.
    """
    results = []
    for row, tree in enumerate(trees):
        scores = []
        for continuation, predicting in zip(tree.continuations, tree.predictors, strict=True):
            rows = logits[row, [index - first_kept for index in predicting]]
            log_probs = F.log_softmax(rows, dim=-1, dtype=softmax_dtype)
            targets = torch.tensor(continuation, device=rows.device)
            greedy = bool((rows.argmax(dim=-1) == targets).all())
            scores.append((float(log_probs.gather(1, targets.unsqueeze(1)).sum()), greedy))
        results.append(scores)
    return results
