"""Backends on a tiny random model: transformers and the OpenAI-compatible server (vLLM: tests/models/test_vllm.py).

The default prompt must reach each judge as exactly the authors' two turns (tests.judge.paper_judge).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_medinj.judge.backends import (
    BackendOptions,
    OpenAIJudge,
    TransformersJudge,
    make_backend,
    render_chat,
    verdict_probability,
    verdict_token_ids,
)
from lm_eval_medinj.judge.items import JudgeItem
from lm_eval_medinj.judge.prompt import load_prompt, parse_prompt
from tests.judge.openai_server import serve_model
from tests.judge.paper_judge import PAPER_SYSTEM, paper_messages

ITEMS = [
    JudgeItem("1", "Quel est l'antidote du paracétamol ?", "La N-acétylcystéine.", "La N-acétylcystéine IV."),
    JudgeItem("2", "Quel ion dépolarise le neurone ?", "Le sodium.", "Le potassium, comme dans toute cellule."),
    JudgeItem("3", "Quel organe produit l'insuline ?", "Le pancréas.", "Le foie."),
]
# Gemma's template: no system role.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def _manual_p(model_dir: Path, item: JudgeItem) -> float:
    """P(equivalent) recomputed here on the authors' two turns: one unpadded forward pass, softmax
    over the logits of "1" and "0"."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    messages = paper_messages(item.question, item.reference, item.candidate)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    yes, no = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")
    return torch.softmax(logits[[yes, no]], dim=-1)[0].item()


def _rendered(tokenizer_dir: Path, item: JudgeItem) -> str:
    """The authors' two turns through the tokenizer's chat template."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    messages = paper_messages(item.question, item.reference, item.candidate)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_prompt_file_is_versioned_and_complete() -> None:
    prompt = load_prompt("v1")
    assert prompt.verdicts == ("Oui", "Non")
    assert prompt.prompt_id.startswith("v1@") and len(prompt.digest) == 8
    text = prompt.render_user("Q ?", "R.", "C.")
    assert "Question : Q ?" in text and "Réponse de référence : R." in text and "Réponse candidate : C." in text
    with pytest.raises(ValueError, match="two different words"):
        parse_prompt("@verdicts Oui Oui\n@user\n{question}{reference}{candidate}", "bad")
    with pytest.raises(ValueError, match="lacks"):
        parse_prompt("@verdicts A B\n@user\n{question}{reference}", "bad")
    with pytest.raises(FileNotFoundError, match="shipped: paper, v1"):
        load_prompt("v999")


def test_default_prompt_renders_the_authors_two_turns(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for item in ITEMS:
        assert render_chat(tokenizer, load_prompt(), item) == _rendered(tiny_model_dir, item)


def test_system_role_falls_back_into_user_turn(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = GEMMA_TEMPLATE
    gemma = render_chat(tokenizer, load_prompt(), ITEMS[0])
    assert "system" not in gemma
    assert gemma.startswith(f"{tokenizer.bos_token}<start_of_turn>user\n{PAPER_SYSTEM}\n\nQuestion: Quel est")
    assert gemma.endswith("<start_of_turn>model\n")


def test_transformers_judge_matches_manual_forward_and_batching(tiny_model_dir: Path) -> None:
    judge = make_backend(f"hf:{tiny_model_dir}")
    assert isinstance(judge, TransformersJudge) and judge.judge_id == f"hf:{tiny_model_dir}"
    prompt = load_prompt()
    batched = judge.p_equivalent(ITEMS, prompt)
    one_by_one = [judge.p_equivalent([item], prompt)[0] for item in ITEMS]
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert batched[0] == pytest.approx(_manual_p(tiny_model_dir, ITEMS[0]), abs=1e-5)
    assert all(0.0 < p < 1.0 for p in batched) and len(set(batched)) == len(batched)
    assert verdict_token_ids(judge.tokenizer, prompt) == (
        judge.tokenizer.convert_tokens_to_ids("1"),
        judge.tokenizer.convert_tokens_to_ids("0"),
    )
    assert verdict_token_ids(judge.tokenizer, load_prompt("v1")) == (
        judge.tokenizer.convert_tokens_to_ids("O"),
        judge.tokenizer.convert_tokens_to_ids("N"),
    )


def test_verdict_probability_from_top_logprobs() -> None:
    verdicts = ("Oui", "Non")
    p, complete = verdict_probability({" Oui": -0.5, "Non": -1.5, "Peut": -3.0}, verdicts)
    assert complete and p == pytest.approx(1 / (1 + math.exp(-1.0)))
    # The longest prefix wins ("Ou" over "O"); lower-case "non" is another token.
    p, complete = verdict_probability({"O": -0.1, "Ou": -2.0, "non": -0.2, "N": -2.0}, verdicts)
    assert complete and p == pytest.approx(0.5)
    # "Non" missing: bounded by the smallest listed log-probability (-4).
    p, complete = verdict_probability({"Oui": -1.0, "Peut": -4.0}, verdicts)
    assert not complete and p == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert verdict_probability({"Peut": -1.0}, verdicts) == (0.5, False)


def test_openai_completions_renders_the_authors_turns(tiny_model_dir: Path) -> None:
    prompt = load_prompt()
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(ITEMS, prompt)
    options = BackendOptions(api="completions", top_logprobs=512, tokenizer=str(tiny_model_dir), concurrency=1)
    received: list[dict] = []
    with serve_model(tiny_model_dir, received=received) as url:
        judge = make_backend(f"openai:tiny@{url}", options)
        assert isinstance(judge, OpenAIJudge) and judge.judge_id == "openai:tiny"
        assert judge.p_equivalent(ITEMS, prompt) == pytest.approx(local, abs=1e-4)
    assert judge.incomplete == 0
    assert [body["prompt"] for body in received] == [_rendered(tiny_model_dir, item) for item in ITEMS]


def test_openai_chat_sends_the_authors_two_turns(tiny_model_dir: Path) -> None:
    prompt = load_prompt()
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(ITEMS, prompt)
    received: list[dict] = []
    with serve_model(tiny_model_dir, received=received) as url:
        judge = OpenAIJudge("tiny", url, top_logprobs=512, concurrency=1)
        assert judge.p_equivalent(ITEMS, prompt) == pytest.approx(local, abs=1e-4)
    expected = [paper_messages(item.question, item.reference, item.candidate) for item in ITEMS]
    assert [body["messages"] for body in received] == expected
    assert judge.system_role and judge.incomplete == 0


def test_openai_chat_without_system_role_puts_it_in_the_user_turn(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[dict] = []
    with serve_model(tiny_model_dir, received=received, chat_template=GEMMA_TEMPLATE) as url:
        judge = OpenAIJudge("gemma-like", url, top_logprobs=512, concurrency=1)
        p = judge.p_equivalent(ITEMS, load_prompt())
    assert all(0.0 < value < 1.0 for value in p) and not judge.system_role
    two_turns = paper_messages(ITEMS[0].question, ITEMS[0].reference, ITEMS[0].candidate)
    one_turn = [
        [{"role": "user", "content": f"{PAPER_SYSTEM}\n\n{turns[1]['content']}"}]
        for turns in (paper_messages(item.question, item.reference, item.candidate) for item in ITEMS)
    ]
    # The first request is refused (HTTP 400), retried in one turn; later ones go in one turn.
    assert [body["messages"] for body in received] == [two_turns, *one_turn]
    assert sum("refused a system turn" in record.getMessage() for record in caplog.records) == 1


def test_openai_spec_needs_url() -> None:
    with pytest.raises(ValueError, match="openai:MODEL@BASE_URL"):
        make_backend("openai:model-without-url")
