"""outlines-core automata and the budget-aware logits processor, on the tiny model's tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from lm_eval_medinj.mcq.answers import candidate_answers
from lm_eval_medinj.models.guided import AutomatonCache, ConstrainedLogitsProcessor
from lm_eval_medinj.protocol import answer_token_budget
from lm_eval_medinj.protocol.constraints import matches
from lm_eval_medinj.protocol.strict import answer_constraint

LETTERS = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def automata(tiny_model_dir: Path) -> AutomatonCache:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return AutomatonCache(tokenizer, tokenizer.eos_token_id, len(tokenizer))


def _walk(automata: AutomatonCache, constraint: dict, text_tokens: list[int]) -> int | None:
    automaton = automata.automaton(constraint)
    state: int | None = automaton.initial_state
    for token in text_tokens:
        state = automaton.next_state(state, token) if state is not None else None
    return state


@pytest.mark.parametrize("prefix", ["", " "])
def test_every_canonical_answer_is_a_complete_path(automata: AutomatonCache, tiny_model_dir: Path, prefix: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    constraint = answer_constraint(LETTERS, multi=True, prefix=prefix)
    automaton = automata.automaton(constraint)
    for answer in candidate_answers(LETTERS, multi=True):
        tokens = tokenizer.encode(prefix + answer, add_special_tokens=False)
        state = _walk(automata, constraint, tokens)
        assert state is not None and automaton.is_complete(state), answer
        assert automata.decode([*tokens, tokenizer.eos_token_id, 0]) == prefix + answer


def test_paper_budget_fits_the_longest_canonical_answer(automata: AutomatonCache) -> None:
    constraint = answer_constraint(LETTERS, multi=True, prefix=" ")
    assert automata.budget_for(constraint, answer_token_budget(len(LETTERS), multi=True)) == 10
    mcqu = answer_constraint(LETTERS, multi=False, prefix=" ")
    assert (
        automata.budget_for(mcqu, 1)
        == automata.automaton(mcqu).tokens_to_complete[automata.automaton(mcqu).initial_state]
    )


def _greedy_under_processor(
    automata: AutomatonCache, constraints: list[dict], budgets: list[int], vocab: int, seed: int
) -> list[str]:
    """Greedy decoding of random logits under the processor, as ``generate`` would run it."""
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.zeros((len(constraints), 3), dtype=torch.long)
    processor = ConstrainedLogitsProcessor([automata.automaton(c) for c in constraints], budgets, prompt.shape[1])
    ids, finished = prompt, [False] * len(constraints)
    for _ in range(max(budgets)):
        scores = processor(ids, torch.randn((len(constraints), vocab), generator=generator))
        chosen = scores.argmax(dim=-1)
        for row in range(len(constraints)):
            if finished[row]:
                chosen[row] = automata.end_token_id
            finished[row] = finished[row] or int(chosen[row]) == automata.end_token_id
        ids = torch.cat([ids, chosen.unsqueeze(1)], dim=1)
    return [automata.decode(row[prompt.shape[1] :].tolist()) for row in ids]


@pytest.mark.parametrize("prefix", ["", " "])
def test_random_logits_always_yield_complete_answers_within_budget(automata: AutomatonCache, prefix: str) -> None:
    constraints = [
        answer_constraint(LETTERS, multi=True, prefix=prefix),
        answer_constraint(LETTERS[:4], multi=True, prefix=prefix),
        answer_constraint(LETTERS, multi=False, prefix=prefix),
    ]
    budgets = [automata.budget_for(c, b) for c, b in zip(constraints, [10, 8, 1], strict=True)]
    seen = set()
    for seed in range(60):
        outputs = _greedy_under_processor(automata, constraints, budgets, automata.mask_size, seed)
        for constraint, output in zip(constraints, outputs, strict=True):
            assert matches(constraint, output), (constraint, output)
        seen.add(outputs[0])
    assert any("," in output for output in seen), "multi-letter answers must be reachable"
