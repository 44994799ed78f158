"""``medinj-hf``: lm-eval's HF model with constrained generation and shared-prefix scoring."""

from __future__ import annotations

import inspect
import json
import logging
import sys
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm
from transformers import LogitsProcessorList

from lm_eval_medinj.models.cache_api import output_cache, with_cache
from lm_eval_medinj.models.constrained import EnforcesConstraints
from lm_eval_medinj.models.guided import AllowedTokensProcessor, AutomatonCache, ConstrainedLogitsProcessor
from lm_eval_medinj.models.internals import require_members
from lm_eval_medinj.models.merged_decoding import (
    PrefilledBatch,
    decoding_groups,
    mask_positions,
    stack_prefilled,
    supports_stacked_decoding,
)
from lm_eval_medinj.models.shared_prefix import (
    HeadCache,
    PrefixTree,
    batch_inputs,
    build_prefix_tree,
    prefix_batches,
    reusable_prefix_length,
    score_trees,
    supports_prefix_cache,
)
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY, TOKEN_MASK, is_token_mask
from lm_eval_medinj.protocol.paper import allowed_token_ids

logger = logging.getLogger(__name__)
# Attention implementations that honour a custom 4-D attention mask.
MASKABLE_ATTENTION = ("eager", "sdpa")
LoglikelihoodRequest = tuple[tuple[str, str] | None, list[int], list[int]]
# A generation request: its generation kwargs and its prompt's token ids.
GenerationRow = tuple[dict[str, Any], list[int]]


# HFLM members overridden or called below (lm_eval_medinj/lm_eval_hook.py: checked on lm-eval 0.4.13).
require_members(
    HFLM,
    ("_loglikelihood_tokens", "generate_until", "_model_generate", "_model_call", "tok_encode", "tok_decode",
     "eot_token_id", "apply_chat_template"),
    "medinj-hf",
)  # fmt: skip


class MedinjHFLM(EnforcesConstraints, HFLM):
    """HF backend that enforces per-request answer constraints and scores shared prefixes once.

    It declares so by serving ``_gen`` tasks' requests (:class:`EnforcesConstraints`).

    Accepts every argument of lm-eval's ``hf`` model, plus:

    - ``reuse_prefix`` (default true): documents batched together compute the prompt head they
      share once (key/value cache).
    - ``decode_batch_size``: answers of several tokens are decoded after prefills of
      ``batch_size`` rows, by groups of consecutive batches of at most this many rows; by
      default, of as many rows as keep the group's key/value cache (rows x (prompt + answer
      budget)) within ``DECODE_CACHE_TOKENS`` tokens.

    Free generation (no constraint) takes the same path where it can: a decoder-only model with
    a static cache, an integer ``batch_size``, no ``think_end_token`` and no ``max_length`` in
    the request; elsewhere it is lm-eval's own. With ``batch_size=auto``, constrained
    generation and shared-prefix scoring run one document at a time.
    """

    DECODE_CACHE_TOKENS = 65_536

    def __init__(
        self, *args: Any, reuse_prefix: bool = True, decode_batch_size: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._automaton_cache: AutomatonCache | None = None
        self._allowed_ids: dict[tuple[str, ...], list[int]] = {}
        prefix_cache = supports_prefix_cache(self.model)
        self.reuse_prefix = reuse_prefix and prefix_cache
        # Batches are stacked for decoding only where their caches can be padded and copied;
        # a stack is bounded by its rows if decode_batch_size is given, else by its cache size.
        stacked = prefix_cache and supports_stacked_decoding(self.model)
        self.decode_rows = (decode_batch_size or sys.maxsize) if stacked else 0
        self.decode_cache_tokens = sys.maxsize if decode_batch_size else self.DECODE_CACHE_TOKENS
        # Free generation is stacked only where lm-eval's own path would do nothing this one does not.
        self.stacks_free_generation = bool(
            stacked and self.backend == "causal" and self.think_end_token is None and isinstance(self.batch_size, int)
        )
        # Prompt tokens not recomputed thanks to a shared head (scoring and generation).
        self.reused_prefix_tokens = 0

    @property
    def documents_per_batch(self) -> int:
        return self.batch_size if isinstance(self.batch_size, int) else 1

    @property
    def automata(self) -> AutomatonCache:
        """outlines-core automata for this model's tokenizer, built on first use."""
        if self._automaton_cache is None:
            logits_size = self.model.get_output_embeddings().weight.shape[0]
            self._automaton_cache = AutomatonCache(self.tokenizer, self.eot_token_id, logits_size)
        return self._automaton_cache

    # ---------------------------------------------------------------- generation

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        ours: list[int] = []
        theirs: list[int] = []
        for i, request in enumerate(requests):
            (ours if self._generates(request.args[1]) else theirs).append(i)
        results: list[str] = [""] * len(requests)
        if theirs:
            outputs = super().generate_until([requests[i] for i in theirs], disable_tqdm)
            for i, output in zip(theirs, outputs, strict=True):
                results[i] = output
        by_settings: dict[tuple[str, str, int], list[int]] = {}
        for i in ours:
            gen_kwargs = requests[i].args[1]
            budget = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)["max_gen_toks"]
            kind = _constraint_kind(gen_kwargs)
            if kind == "grammar":
                budget = self.automata.budget_for(gen_kwargs[CONSTRAINT_KEY], budget)
            by_settings.setdefault((kind, _settings_key(gen_kwargs), budget), []).append(i)
        progress = tqdm(total=len(ours), disable=disable_tqdm or self.rank != 0, desc="Generation (medinj-hf)")
        heads = HeadCache(self.model) if self.reuse_prefix else None
        for (_, _, budget), indices in by_settings.items():
            # Left-truncated to leave room for the answer, as lm-eval's hf model does.
            room = self.max_length - budget
            contexts = [self.tok_encode(requests[i].args[0], left_truncate_len=room) for i in indices]
            batches = prefix_batches(contexts, self.documents_per_batch)
            widths = [max(len(contexts[p]) for p in batch) + budget for batch in batches]
            # One token is all a prefill gives: decoding several batches together saves nothing.
            rows = self.decode_rows if budget > 1 else 0
            for group in decoding_groups(batches, widths, rows, self.decode_cache_tokens):
                outputs = self._generate_batches(
                    [[(requests[indices[p]].args[1], contexts[p]) for p in batch] for batch in group], budget, heads
                )
                for p, output in zip([p for batch in group for p in batch], outputs, strict=True):
                    results[indices[p]] = output
                    self.cache_hook.add_partial("generate_until", requests[indices[p]].args, output)
                progress.update(sum(len(batch) for batch in group))
        progress.close()
        return results

    def _generates(self, gen_kwargs: dict[str, Any]) -> bool:
        """Whether this backend generates the request itself (else lm-eval's ``hf`` model does)."""
        return CONSTRAINT_KEY in gen_kwargs or (self.stacks_free_generation and "max_length" not in gen_kwargs)

    def _generate_batches(self, batches: list[list[GenerationRow]], budget: int, heads: HeadCache | None) -> list[str]:
        """One ``generate`` call over ``batches``, all within ``budget`` tokens.

        Rows share one kind of constraint (each row its own): all free, all under the authors' token
        mask, or all under a grammar.

        A single batch is left-padded and generated as is; several are prefilled one by one,
        then stacked (:mod:`merged_decoding`) and decoded together.
        """
        encoded = [self._left_padded([tokens for _, tokens in batch], heads) for batch in batches]
        if len(encoded) == 1 or any(context_ids.shape[1] == 1 for context_ids, _, _ in encoded):
            # One batch, or a one-token prompt with nothing to prefill: each batch generates alone.
            return [
                output
                for batch, inputs in zip(batches, encoded, strict=True)
                for output in self._decode([gen_kwargs for gen_kwargs, _ in batch], budget, *inputs)
            ]
        gen_kwargs = [row_kwargs for batch in batches for row_kwargs, _ in batch]
        stacked = stack_prefilled(
            (self._prefill(*inputs) for inputs in encoded),
            self.model.config,
            rows=len(gen_kwargs),
            width=max(context_ids.shape[1] for context_ids, _, _ in encoded),
            new_tokens=budget,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return self._decode(gen_kwargs, budget, stacked.input_ids, stacked.attention_mask, stacked.cache)

    def _decode(
        self,
        gen_kwargs: list[dict[str, Any]],
        budget: int,
        context_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cache: Any,
    ) -> list[str]:
        """``generate`` from left-padded prompts (``cache`` holding their first columns, if any).

        Constrained rows end at the end-of-turn token; free rows as lm-eval's ``hf`` model ends
        them (the model's own end tokens, the stop sequences). Eager by default, even with a
        static cache: shapes change from call to call.
        """
        kind = _constraint_kind(gen_kwargs[0])
        kwargs = normalize_gen_kwargs(_without_constraint(gen_kwargs[0]), self.max_gen_toks)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=self.tok_decode(self.eot_token_id, False))
        kwargs.pop("max_gen_toks")
        if kind == "token_mask":
            # The authors' decoding: a fixed mask, and the tokenizer's end of sequence as the only stop token.
            allowed = [self._allowed_token_ids(row_kwargs[CONSTRAINT_KEY]) for row_kwargs in gen_kwargs]
            kwargs.update(
                logits_processor=LogitsProcessorList([AllowedTokensProcessor(allowed)]),
                eos_token_id=self.tokenizer.eos_token_id,
            )
        elif kind == "grammar":
            automata = [self.automata.automaton(row_kwargs[CONSTRAINT_KEY]) for row_kwargs in gen_kwargs]
            budgets = [budget] * len(gen_kwargs)
            processor = ConstrainedLogitsProcessor(automata, budgets, prompt_length=context_ids.shape[1])
            kwargs.update(logits_processor=LogitsProcessorList([processor]), eos_token_id=self.eot_token_id)
        if cache is not None:
            kwargs = with_cache(self.model, cache, **kwargs)
        kwargs.setdefault("disable_compile", True)
        generated = self._model_generate(
            context=context_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            stop=until,
            max_length=context_ids.shape[1] + budget,
            **kwargs,
        )
        outputs = []
        for row in generated[:, context_ids.shape[1] :].tolist():
            text = self.automata.decode(row) if kind == "grammar" else self.tok_decode(row)
            outputs.append(postprocess_generated_text(text, stop=until, think_end_token=None))
        return outputs

    def _allowed_token_ids(self, constraint: dict[str, Any]) -> list[int]:
        letters = tuple(constraint[TOKEN_MASK])
        if letters not in self._allowed_ids:
            self._allowed_ids[letters] = allowed_token_ids(self.tokenizer, letters)
        return self._allowed_ids[letters]

    def _prefill(self, context_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any) -> PrefilledBatch:
        """The key/value cache of every prompt column but the last, after the cached head if any."""
        start = cache.get_seq_length() if cache is not None else 0
        if start < context_ids.shape[1] - 1:
            with torch.no_grad(), self._autocast():
                output = self.model(
                    **with_cache(
                        self.model,
                        cache,
                        input_ids=context_ids[:, start:-1].to(self.device),
                        attention_mask=attention_mask[:, :-1].to(self.device),
                        position_ids=mask_positions(attention_mask)[:, start:-1].to(self.device),
                        use_cache=True,
                        logits_to_keep=1,
                    )
                )
                cache = output_cache(output)
        return PrefilledBatch(context_ids, attention_mask, cache)

    def _autocast(self) -> torch.autocast:
        """The mixed precision lm-eval's ``hf`` model runs under (disabled without ``mixed_precision_dtype``)."""
        dtype = self.mixed_precision_dtype
        return torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None)

    def _left_padded(self, rows: list[list[int]], heads: HeadCache | None) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """``rows`` left-padded into one batch, with the head they share cached once (if ``heads``).

        The shared head goes before the padding, in the same columns of every row: positions
        follow the attention mask, so ``head, padding, rest`` generates exactly as
        ``padding, head, rest``.
        """
        shared = reusable_prefix_length(rows) if heads is not None and len(rows) > 1 else 0
        cache = None
        if shared:
            with self._autocast():
                cache, shared = heads.for_batch(rows[0][:shared], len(rows))
            self.reused_prefix_tokens += shared * (len(rows) - 1)
        width = max(len(tokens) for tokens in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tokens in enumerate(rows):
            rest = width - len(tokens) + shared
            ids[row, :shared] = torch.tensor(tokens[:shared], dtype=torch.long)
            ids[row, rest:] = torch.tensor(tokens[shared:], dtype=torch.long)
            mask[row, :shared] = 1
            mask[row, rest:] = 1
        return ids, mask, cache

    # ---------------------------------------------------------------- shared-prefix scoring

    def _loglikelihood_tokens(
        self,
        requests: list[LoglikelihoodRequest],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if not self._can_share_prefixes():
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        by_context: dict[tuple[int, ...], list[int]] = {}
        for i, (_, context, _) in enumerate(requests):
            by_context.setdefault(tuple(context), []).append(i)
        shared = [
            indices
            for context, indices in by_context.items()
            if len(indices) > 1 and len(context) + max(len(requests[i][2]) for i in indices) <= self.max_length
        ]
        in_shared = {i for indices in shared for i in indices}
        single = [i for i in range(len(requests)) if i not in in_shared]
        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        if single:
            outputs = super()._loglikelihood_tokens([requests[i] for i in single], disable_tqdm, override_bs)
            for i, output in zip(single, outputs, strict=True):
                results[i] = output
        heads = HeadCache(self.model) if self.reuse_prefix else None
        progress = tqdm(total=len(in_shared), disable=disable_tqdm or self.rank != 0, desc="Shared-prefix scoring")
        for positions in prefix_batches([requests[indices[0]][1] for indices in shared], self.documents_per_batch):
            groups = [shared[position] for position in positions]
            trees = [
                build_prefix_tree(requests[indices[0]][1], [requests[i][2] for i in indices]) for indices in groups
            ]
            for indices, scores in zip(groups, self._score_trees(trees, heads), strict=True):
                for i, answer in zip(indices, scores, strict=True):
                    results[i] = answer
                    if requests[i][0] is not None:
                        self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
                progress.update(len(indices))
        progress.close()
        return results

    def _can_share_prefixes(self) -> bool:
        attention = getattr(self.model.config, "_attn_implementation", None)
        keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self.backend == "causal" and attention in MASKABLE_ATTENTION and keeps_logits

    def _score_trees(self, trees: list[PrefixTree], heads: HeadCache | None) -> list[list[tuple[float, bool]]]:
        pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        contexts = [tree.tokens[: tree.context_length] for tree in trees]
        shared = reusable_prefix_length(contexts) if heads is not None and len(trees) > 1 else 0
        first_kept = min(tree.context_length for tree in trees) - 1
        with torch.no_grad(), self._autocast():
            cache, shared = heads.for_batch(contexts[0][:shared], len(trees)) if shared else (None, 0)
            input_ids, position_ids, mask = batch_inputs(trees, pad_token_id, self.model.dtype, prefix_length=shared)
            logits = self.model(
                **with_cache(
                    self.model,
                    cache,
                    input_ids=input_ids.to(self.device),
                    position_ids=position_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    use_cache=cache is not None,
                    logits_to_keep=shared + input_ids.shape[1] - first_kept,
                )
            ).logits
        self.reused_prefix_tokens += shared * (len(trees) - 1)
        return score_trees(logits, first_kept, trees, self.softmax_dtype)


def _constraint_kind(gen_kwargs: dict[str, Any]) -> str:
    """Either "free", "token_mask" (the authors' mask) or "grammar" (an outlines-core automaton)."""
    if CONSTRAINT_KEY not in gen_kwargs:
        return "free"
    return "token_mask" if is_token_mask(gen_kwargs[CONSTRAINT_KEY]) else "grammar"


def _without_constraint(gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in gen_kwargs.items() if key != CONSTRAINT_KEY}


def _settings_key(gen_kwargs: dict[str, Any]) -> str:
    """Generation settings but constraint and token budget (batches also share a budget)."""
    settings = _without_constraint(gen_kwargs)
    settings.pop("max_gen_toks", None)
    return json.dumps(settings, sort_keys=True, default=str)
