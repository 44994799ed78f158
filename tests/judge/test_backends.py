"""Backends on a tiny random model: transformers, the OpenAI-compatible server, vLLM."""

from __future__ import annotations

import importlib.util
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

ITEMS = [
    JudgeItem("1", "Quel est l'antidote du paracétamol ?", "La N-acétylcystéine.", "La N-acétylcystéine IV."),
    JudgeItem(
        "2", "Quel ion dépolarise le neurone ?", "Le sodium.", "Le potassium, comme dans toute cellule."
    ),
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
    """P(equivalent) recomputed here: one unpadded forward pass, softmax over the two verdict logits."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    prompt = load_prompt("v1")
    messages = [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": prompt.render_user(item.question, item.reference, item.candidate)},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    yes, no = (
        tokenizer.encode("Oui", add_special_tokens=False)[0],
        tokenizer.encode("Non", add_special_tokens=False)[0],
    )
    return torch.softmax(logits[[yes, no]], dim=-1)[0].item()


def test_prompt_file_is_versioned_and_complete() -> None:
    prompt = load_prompt("v1")
    assert prompt.verdicts == ("Oui", "Non")
    assert prompt.prompt_id.startswith("v1@") and len(prompt.digest) == 8
    text = prompt.render_user("Q ?", "R.", "C.")
    assert (
        "Question : Q ?" in text and "Réponse de référence : R." in text and "Réponse candidate : C." in text
    )
    with pytest.raises(ValueError, match="two different words"):
        parse_prompt("@verdicts Oui Oui\n@user\n{question}{reference}{candidate}", "bad")
    with pytest.raises(ValueError, match="lacks"):
        parse_prompt("@verdicts A B\n@user\n{question}{reference}", "bad")
    with pytest.raises(FileNotFoundError, match="shipped: v1"):
        load_prompt("v999")


def test_system_role_falls_back_into_user_turn(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = load_prompt("v1")
    with_system = render_chat(tokenizer, prompt, ITEMS[0])
    assert with_system.count("<|im_start|>system") == 1
    tokenizer.chat_template = GEMMA_TEMPLATE
    gemma = render_chat(tokenizer, prompt, ITEMS[0])
    assert "system" not in gemma
    assert gemma.startswith(
        f"{tokenizer.bos_token}<start_of_turn>user\n{prompt.system}\n\nVoici une question"
    )
    assert gemma.endswith("<start_of_turn>model\n")


def test_transformers_judge_matches_manual_forward_and_batching(tiny_model_dir: Path) -> None:
    judge = make_backend(f"hf:{tiny_model_dir}")
    assert isinstance(judge, TransformersJudge) and judge.judge_id == f"hf:{tiny_model_dir}"
    prompt = load_prompt("v1")
    batched = judge.p_equivalent(ITEMS, prompt)
    one_by_one = [judge.p_equivalent([item], prompt)[0] for item in ITEMS]
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert batched[0] == pytest.approx(_manual_p(tiny_model_dir, ITEMS[0]), abs=1e-5)
    assert all(0.0 < p < 1.0 for p in batched) and len(set(batched)) == len(batched)
    assert verdict_token_ids(judge.tokenizer, prompt) == (
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


def test_openai_completions_matches_local_model(tiny_model_dir: Path, served_tiny_model: str) -> None:
    prompt = load_prompt("v1")
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(ITEMS, prompt)
    options = BackendOptions(
        api="completions", top_logprobs=512, tokenizer=str(tiny_model_dir), concurrency=2
    )
    judge = make_backend(f"openai:tiny@{served_tiny_model}", options)
    assert isinstance(judge, OpenAIJudge) and judge.judge_id == "openai:tiny"
    assert judge.p_equivalent(ITEMS, prompt) == pytest.approx(local, abs=1e-4)
    assert judge.incomplete == 0


def test_openai_endpoint_chat_matches_local_without_system_role(
    tiny_model_dir: Path, served_tiny_model: str, tmp_path: Path
) -> None:
    # The chat route sends the system text inside the user turn; without system text both
    # routes render the same input.
    text = load_prompt("v1").user
    prompt_file = tmp_path / "nosystem.txt"
    prompt_file.write_text(f"@verdicts Oui Non\n@user\n{text}\n", encoding="utf-8")
    prompt = load_prompt(str(prompt_file))
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(ITEMS, prompt)
    remote = OpenAIJudge("tiny", served_tiny_model, top_logprobs=512).p_equivalent(ITEMS, prompt)
    assert remote == pytest.approx(local, abs=1e-4)


def test_openai_spec_needs_url() -> None:
    with pytest.raises(ValueError, match="openai:MODEL@BASE_URL"):
        make_backend("openai:model-without-url")


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vllm is not importable in this environment"
)
def test_vllm_judge_matches_transformers(tiny_model_dir: Path) -> None:
    prompt = load_prompt("v1")
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(ITEMS, prompt)
    options = BackendOptions(
        vllm_kwargs={"dtype": "float32", "gpu_memory_utilization": 0.2, "enforce_eager": True}
    )
    judge = make_backend(f"vllm:{tiny_model_dir}", options)
    assert judge.p_equivalent(ITEMS, prompt) == pytest.approx(local, abs=1e-3)
