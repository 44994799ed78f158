"""The default judge (the paper's prompt) on SmolLM2-135M-Instruct against the authors' own loop."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import torch

from lm_eval_medinj.judge.backends import TransformersJudge
from lm_eval_medinj.judge.cli_args import add_judge_args
from lm_eval_medinj.judge.items import read_labelled
from lm_eval_medinj.judge.prompt import DEFAULT_PROMPT, load_prompt
from tests.judge.paper_judge import PAPER_SYSTEM, authors_greedy, paper_messages, paper_user
from tests.oeq.models import teach_answers

# What the taught judge answers, item by item: a verdict either way, or a word that is none.
TAUGHT_OUTPUTS = ("1", "0", "Non")
TAUGHT_ITEMS = 9


def test_the_default_prompt_is_the_authors() -> None:
    prompt = load_prompt()
    assert DEFAULT_PROMPT == "paper" and prompt.prompt_id.startswith("paper@")
    assert prompt.verdicts == ("1", "0")
    assert prompt.system == PAPER_SYSTEM
    question, reference, candidate = " Quel organe ?\n", "\tLe pancréas. ", "\nLe foie.\n"
    assert prompt.render_user(question, reference, candidate) == paper_user(question, candidate, reference)


def test_scripts_default_to_the_paper_prompt_and_select_v1() -> None:
    parser = argparse.ArgumentParser()
    add_judge_args(parser)
    assert parser.parse_args([]).prompt == "paper"
    assert load_prompt(parser.parse_args(["--prompt", "v1"]).prompt).verdicts == ("Oui", "Non")


@pytest.mark.slow
def test_p_equivalent_is_the_softmax_of_the_authors_first_step_on_smollm2(
    smollm2: tuple[Any, Any], smollm2_judge_dir: Path, labelled_small: Path
) -> None:
    """Our verdict (P >= 0.5) is the authors' wherever their greedy token is a verdict token, and
    P is the softmax of their first step's logits over the two verdict tokens."""
    items = [labelled.item for labelled in read_labelled(labelled_small)]
    judge = TransformersJudge(str(smollm2_judge_dir), device="cpu")
    prompt = load_prompt()
    p = [value for start in range(0, len(items), 8) for value in judge.p_equivalent(items[start : start + 8], prompt)]

    model, tokenizer = smollm2
    one, zero = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")
    assert [tokenizer.encode(digit, add_special_tokens=False) for digit in "10"] == [[one], [zero]]
    authors = [authors_greedy(model, tokenizer, item.question, item.reference, item.candidate) for item in items]

    expected_p = [torch.softmax(judged.logits[[one, zero]], dim=-1)[0].item() for judged in authors]
    assert p == pytest.approx(expected_p, abs=1e-4)
    on_verdict = [i for i, judged in enumerate(authors) if judged.token in (one, zero)]
    for i in on_verdict:
        assert int(p[i] >= 0.5) == authors[i].verdict, (items[i].id, p[i], authors[i])
    no_verdict_token = 1 - len(on_verdict) / len(items)
    no_authors_verdict = sum(judged.verdict is None for judged in authors) / len(items)
    greedy = sorted({tokenizer.decode([judged.token]) for judged in authors})
    print(
        f"\nSmolLM2-135M-Instruct, paper prompt, {len(items)} items: greedy token not a verdict token on "
        f"{no_verdict_token:.0%}, no authors' verdict on {no_authors_verdict:.0%} (greedy tokens {greedy})"
    )
    assert 0.0 <= no_authors_verdict <= no_verdict_token <= 1.0


@pytest.fixture(scope="module")
def taught_judge_dir(tiny_model_dir: Path, labelled_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama taught to answer the paper prompt of the first items with "1", "0" or "Non"."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = [labelled.item for labelled in read_labelled(labelled_small)][:TAUGHT_ITEMS]
    chat = {
        tokenizer.apply_chat_template(
            paper_messages(item.question, item.reference, item.candidate), tokenize=False, add_generation_prompt=True
        ): TAUGHT_OUTPUTS[i % len(TAUGHT_OUTPUTS)]
        for i, item in enumerate(items)
    }
    return teach_answers(tiny_model_dir, {}, chat, tmp_path_factory.mktemp("taught-judge"), max_steps=400)


@pytest.mark.slow
def test_verdicts_equal_the_authors_where_their_greedy_token_is_a_verdict(
    taught_judge_dir: Path, labelled_small: Path
) -> None:
    """On a judge whose greedy answers are "1", "0" and a non-verdict word, our verdict equals the
    authors' on every item where theirs exists, and the other items are counted."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    items = [labelled.item for labelled in read_labelled(labelled_small)][:TAUGHT_ITEMS]
    p = TransformersJudge(str(taught_judge_dir), device="cpu").p_equivalent(items, load_prompt())
    model = AutoModelForCausalLM.from_pretrained(taught_judge_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(taught_judge_dir)
    authors = [authors_greedy(model, tokenizer, item.question, item.reference, item.candidate) for item in items]
    taught = [TAUGHT_OUTPUTS[i % len(TAUGHT_OUTPUTS)] for i in range(len(items))]
    assert [judged.verdict for judged in authors] == [int(word) if word in "01" else None for word in taught]
    with_verdict = [i for i, judged in enumerate(authors) if judged.verdict is not None]
    assert [int(p[i] >= 0.5) for i in with_verdict] == [authors[i].verdict for i in with_verdict]
    print(f"\ntaught tiny judge: no authors' verdict on {len(items) - len(with_verdict)} of {len(items)} items")
    assert len(with_verdict) == 2 * len(items) // 3
