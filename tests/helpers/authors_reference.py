"""The authors' MCQ evaluation procedure, written from the text of issue 14 alone.

Independent of the package on purpose (no ``lm_eval_medinj`` import): it reads the Hub-shaped
JSON files itself and runs transformers ``generate`` one record at a time, so that the tasks
can be checked against it item by item.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

PUNCTUATION = set(",;/|+.():") | {" ", "\n"}


class MaskProcessor(LogitsProcessor):
    def __init__(self, allowed: list[int]):
        self.allowed = allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, -float("inf"))
        mask[:, self.allowed] = 0
        return scores + mask


def allowed_ids(tokenizer: Any, classes: list[str]) -> list[int]:
    ids = set()
    for letter in classes:
        ids.add(tokenizer.encode(letter.upper(), add_special_tokens=False)[-1])
        ids.add(tokenizer.encode(" " + letter.upper(), add_special_tokens=False)[-1])
    for separator in [",", ", ", " ", ",\n"]:
        ids.add(tokenizer.encode(separator, add_special_tokens=False)[-1])
    ids.add(tokenizer.eos_token_id)
    for value in tokenizer.special_tokens_map.values():
        if isinstance(value, str) and any(key in value.lower() for key in ("eos", "eot", "im_end")):
            ids.add(tokenizer.convert_tokens_to_ids(value))
    return sorted(ids)


def parse(text: str, classes: list[str], multi: bool) -> list[str]:
    text = text.upper()
    options = [c.upper() for c in classes]
    letters: list[str] = []
    for char in text:
        if char.isalpha():
            if char not in options:
                return []
            if char not in letters:
                letters.append(char)
        elif char not in PUNCTUATION:
            return []
    if not multi and len(letters) != 1:
        return []
    return letters


def gold_letters(answer: str) -> set[str]:
    return {part.upper() for part in answer.replace(",", " ").split()}


def generate_answer(model: Any, tokenizer: Any, record: dict[str, Any], multi: bool, constrained: bool) -> str:
    messages = [m for m in record["messages"] if m["role"] != "assistant"]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    budget = 2 * len(record["classes"]) if multi else 1
    processors = LogitsProcessorList([MaskProcessor(allowed_ids(tokenizer, record["classes"]))] if constrained else [])
    with torch.no_grad():
        output = model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            max_new_tokens=budget,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            logits_processor=processors,
        )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def reference_scores(
    model: Any, tokenizer: Any, data_dir: Path, task: str, constrained: bool
) -> dict[str, dict[str, float]]:
    """Record id -> {"em", "hamming", "text"} of the authors' procedure on ``Native/Test/<task>``."""
    multi = task == "mcq"
    records = json.loads((data_dir / "Native" / "Test" / task / f"{task}_test.json").read_text(encoding="utf-8"))
    scores = {}
    for record in records:
        text = generate_answer(model, tokenizer, record, multi, constrained)
        predicted, gold = set(parse(text, record["classes"], multi)), gold_letters(record["answer"])
        hamming = len(gold & predicted) / len(gold | predicted) if predicted else 0.0
        scores[record["id"]] = {"em": float(predicted == gold), "hamming": hamming, "text": text}
    return scores
