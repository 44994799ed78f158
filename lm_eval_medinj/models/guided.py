"""Token-level constraint automata from outlines-core, and a transformers logits processor.

outlines-core 0.2.14 drops the transitions out of an accepting state towards a non-accepting
one ("A" may end an MCQ answer or continue as "A, C": the ", " is lost), so the end token is
spelled inside the regex as a private-use character mapped to the tokenizer's end token. An
answer is then complete in any state from which the end token leads to acceptance.

Masks are budget-aware: with ``r`` new tokens left, a token is allowed only if a complete
answer stays reachable within ``r - 1`` more tokens, so generation that stops at the budget
always stops on a complete answer.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

import torch
from outlines_core import Index, Vocabulary
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from lm_eval_medinj.protocol.constraints import Constraint, constraint_regex

logger = logging.getLogger(__name__)
# Stands for the end token inside patterns; no real token decodes to it.
END_MARK = "\ue000"


@dataclass
class AnswerAutomaton:
    """The token automaton of one constraint for one tokenizer."""

    index: Index
    end_token_id: int
    mask_size: int
    _masks: dict[tuple[int, int, torch.device], torch.Tensor] = field(default_factory=dict)

    @cached_property
    def transitions(self) -> dict[int, dict[int, int]]:
        return self.index.get_transitions()

    @property
    def initial_state(self) -> int:
        return self.index.get_initial_state()

    def is_complete(self, state: int) -> bool:
        """Whether the text so far is a whole answer (the end token may follow)."""
        return self.end_token_id in self.transitions.get(state, {})

    @cached_property
    def tokens_to_complete(self) -> dict[int, int]:
        """Fewest answer tokens from each state to a complete answer (unreachable: absent)."""
        predecessors: dict[int, list[int]] = {}
        for state, moves in self.transitions.items():
            for token, target in moves.items():
                if token != self.end_token_id:
                    predecessors.setdefault(target, []).append(state)
        distance = {state: 0 for state in self.transitions if self.is_complete(state)}
        queue = deque(distance)
        while queue:
            state = queue.popleft()
            for previous in predecessors.get(state, []):
                if previous not in distance:
                    distance[previous] = distance[state] + 1
                    queue.append(previous)
        return distance

    def next_state(self, state: int, token_id: int) -> int | None:
        return self.transitions.get(state, {}).get(token_id)

    def blocked(self, state: int, budget: int, device: torch.device) -> torch.Tensor:
        """Boolean mask of the tokens forbidden in ``state`` with ``budget`` new tokens left, on ``device``."""
        key = (state, budget, device)
        if key not in self._masks:
            mask = torch.ones(self.mask_size, dtype=torch.bool)
            distance = self.tokens_to_complete
            for token, target in self.transitions.get(state, {}).items():
                if token >= self.mask_size:  # outlines-core's own end token, never emitted
                    continue
                if token == self.end_token_id or distance.get(target, budget) <= budget - 1:
                    mask[token] = False
            self._masks[key] = mask.to(device)
        return self._masks[key]


class AutomatonCache:
    """outlines-core vocabulary of one tokenizer, and one automaton per pattern."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, end_token_id: int, mask_size: int):
        self.end_token_id = end_token_id
        self.mask_size = mask_size
        self._token_text: dict[int, str] = {}
        strings: dict[str, list[int]] = {}
        for token, token_id in tokenizer.get_vocab().items():
            if token_id == end_token_id or token_id >= mask_size:
                continue
            text = tokenizer.convert_tokens_to_string([token])
            if text:
                self._token_text[token_id] = text
                strings.setdefault(text, []).append(token_id)
        strings[END_MARK] = [end_token_id]
        # outlines-core needs an end token of its own, outside the masks; ours is END_MARK.
        self._vocabulary = Vocabulary(mask_size, strings)
        self._automata: dict[str, AnswerAutomaton] = {}

    def automaton(self, constraint: Constraint) -> AnswerAutomaton:
        pattern = constraint_regex(constraint)
        if pattern not in self._automata:
            index = Index(f"({pattern}){END_MARK}", self._vocabulary)
            self._automata[pattern] = AnswerAutomaton(index, self.end_token_id, self.mask_size)
        return self._automata[pattern]

    def decode(self, token_ids: list[int]) -> str:
        """The text the automata read for these tokens, up to the end token (padding follows)."""
        if self.end_token_id in token_ids:
            token_ids = token_ids[: token_ids.index(self.end_token_id)]
        return "".join(self._token_text.get(token_id, "") for token_id in token_ids)

    def budget_for(self, constraint: Constraint, max_new_tokens: int) -> int:
        """``max_new_tokens``, raised (with a warning) to the shortest complete answer."""
        automaton = self.automaton(constraint)
        shortest = automaton.tokens_to_complete.get(automaton.initial_state)
        if shortest is None:
            raise ValueError(f"no token sequence of this tokenizer spells an answer allowed by {constraint}")
        if shortest > max_new_tokens:
            logger.warning(
                "constraint %s needs %d tokens, more than max_gen_toks=%d: using %d",
                constraint,
                shortest,
                max_new_tokens,
                shortest,
            )
        return max(shortest, max_new_tokens)


class ConstrainedLogitsProcessor(LogitsProcessor):
    """Masks each row of a left-padded batch to its own automaton and token budget.

    One instance serves one ``generate`` call: it starts every row in its initial state and
    follows the tokens the model emits.
    """

    def __init__(self, automata: list[AnswerAutomaton], budgets: list[int], prompt_length: int):
        self.automata = automata
        self.budgets = budgets
        self.prompt_length = prompt_length
        self.states: list[int | None] = [automaton.initial_state for automaton in automata]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_length
        if step > 0:
            for row, token in enumerate(input_ids[:, -1].tolist()):  # one device-to-host read per step
                automaton, state = self.automata[row], self.states[row]
                if state is not None:
                    self.states[row] = None if token == automaton.end_token_id else automaton.next_state(state, token)
        masks = [
            # A finished row gets any mask: generate pads it from now on.
            automaton.blocked(state if state is not None else automaton.initial_state, budget - step, scores.device)
            for automaton, state, budget in zip(self.automata, self.states, self.budgets, strict=True)
        ]
        width = masks[0].shape[0]
        scores[:, :width].masked_fill_(torch.stack(masks), -torch.inf)
        scores[:, width:] = -torch.inf
        return scores


class AllowedTokensProcessor(LogitsProcessor):
    """Masks each row of a batch to its own fixed set of allowed token ids (the authors' mask)."""

    def __init__(self, allowed: list[list[int]]):
        self.allowed = allowed
        self._blocked: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._blocked is None:
            self._blocked = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
            for row, ids in enumerate(self.allowed):
                self._blocked[row, ids] = False
        return scores.masked_fill(self._blocked, -torch.inf)
