"""Shared-prefix scoring: a context and all its continuations in one forward pass.

The context is laid out once, followed by the distinct proper prefixes of the continuations
as a token tree ("A", ",", " C"... share their common heads). Each tree token attends to the
whole context and to its own ancestors, at the position it would have in context +
continuation, through a 4-D attention mask. The logits that predict each continuation token
are then those of lm-eval's one-sequence-per-continuation forward, for a fraction of its cost:
multi-answer questions need about one prefill instead of one per candidate subset.

Documents also share prompt heads (instruction, system prompt, few-shot examples): batches
gather contexts with a common head, whose key/value cache is computed once per batch and
reused by every row (:class:`HeadCache`), for scoring and for generation alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from lm_eval_medinj.models.cache_api import output_cache

# Contexts sharing at least this many head tokens are batched together and reuse their head.
MIN_SHARED_PREFIX = 16


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


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Number of leading tokens all ``sequences`` share."""
    first, length = sequences[0], min(len(sequence) for sequence in sequences)
    for sequence in sequences[1:]:
        shared = 0
        while shared < length and sequence[shared] == first[shared]:
            shared += 1
        length = shared
    return length


def prefix_batches(
    contexts: Sequence[Sequence[int]], batch_size: int, min_shared: int = MIN_SHARED_PREFIX
) -> list[list[int]]:
    """Indices of ``contexts`` in batches: contexts sharing a head batched together, longest first.

    Contexts sorted by their tokens sit next to those they share most with; runs whose
    neighbours share at least ``min_shared`` tokens form families, the rest one pool. Each
    family (and the pool) is sorted by length, longest first, and cut into batches.
    """
    if not contexts:
        return []
    order = sorted(range(len(contexts)), key=lambda i: contexts[i])
    runs = [[order[0]]]
    for previous, current in pairwise(order):
        if common_prefix_length([contexts[previous], contexts[current]]) >= min_shared:
            runs[-1].append(current)
        else:
            runs.append([current])
    families = [family for run in runs if len(run) > 1 for family in _split_family(run, contexts, min_shared)]
    pool = [i for run in runs if len(run) == 1 for i in run]
    batches = []
    for family in [*families, pool]:
        family.sort(key=lambda i: -len(contexts[i]))
        batches.extend(family[start : start + batch_size] for start in range(0, len(family), batch_size))
    return batches


def _split_family(family: list[int], contexts: Sequence[Sequence[int]], min_shared: int) -> list[list[int]]:
    """Sub-families of a token-sorted family whose members share ``min_shared`` more tokens.

    A chat template's system prompt joins MCQU and MCQ questions in one family; split where the
    family's shortest shared head is reached, when every part is a family of its own with a
    longer head (a single odd context keeps the family whole).
    """
    shared = [common_prefix_length([contexts[a], contexts[b]]) for a, b in pairwise(family)]
    narrowest = min(shared)
    parts = [[family[0]]]
    for length, index in zip(shared, family[1:], strict=True):
        if length == narrowest:
            parts.append([index])
        else:
            parts[-1].append(index)
    if len(parts) == 1 or any(
        len(part) < 2 or common_prefix_length([contexts[i] for i in part]) < narrowest + min_shared for part in parts
    ):
        return [family]
    return [sub for part in parts for sub in _split_family(part, contexts, min_shared)]


def reusable_prefix_length(contexts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED_PREFIX) -> int:
    """Head tokens worth caching for one batch: shared by all, leaving each row one token."""
    shared = min(common_prefix_length(contexts), min(len(context) for context in contexts) - 1)
    return shared if shared >= min_shared else 0


def supports_prefix_cache(model: PreTrainedModel) -> bool:
    """Whether ``model`` keeps a plain growing key/value cache (no sliding window, no recurrent state)."""
    try:
        layers = DynamicCache(config=model.config).layers
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


class HeadCache:
    """Key/value states of the last prompt head computed, reused by the batches that start with it.

    Batches of one family share at least ``min_shared`` head tokens, so the head is computed
    once per family (at batch size 1) and cut to what each batch has in common with it. Make one
    per evaluation call: the states are only valid for the weights they were computed with.
    """

    def __init__(self, model: PreTrainedModel, min_shared: int = MIN_SHARED_PREFIX):
        self.model = model
        self.min_shared = min_shared
        self._tokens: list[int] = []
        self._states: list[tuple[torch.Tensor, torch.Tensor]] = []

    def for_batch(self, head: Sequence[int], rows: int) -> tuple[DynamicCache, int]:
        """A cache holding the first tokens of ``head`` for ``rows`` rows, and how many it holds."""
        reused = common_prefix_length([self._tokens, head])
        # Compute this head afresh when the rows would save more than computing it costs.
        if reused < self.min_shared or (rows - 1) * (len(head) - reused) > len(head):
            self._compute(head)
            reused = len(head)
        return DynamicCache(
            ddp_cache_data=[
                (keys[:, :, :reused].expand(rows, -1, -1, -1), values[:, :, :reused].expand(rows, -1, -1, -1))
                for keys, values in self._states
            ]
        ), reused

    def _compute(self, head: Sequence[int]) -> None:
        device = next(self.model.parameters()).device
        with torch.no_grad():
            output = self.model(input_ids=torch.tensor([list(head)], device=device), use_cache=True, logits_to_keep=1)
        self._tokens = list(head)
        self._states = [(layer.keys, layer.values) for layer in output_cache(output).layers]


def batch_inputs(
    trees: Sequence[PrefixTree], pad_token_id: int, dtype: torch.dtype, prefix_length: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, position ids and additive 4-D attention mask for ``trees``.

    With ``prefix_length``, the first tokens (shared by every tree and held in a cache) are left
    out of the inputs; the mask keeps one column per cached token, visible to every row.
    """
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
    allowed = allowed[:, :, prefix_length:]
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return input_ids[:, prefix_length:], position_ids[:, prefix_length:], mask


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
