"""The authors' judge, written out here independently of the package (``LLM-as-a-judge.py``,
github ikram28/MedInjection-FR, commit 6ef2e3b): their two turns, spelled out literally, and
their read-out (greedy, one new token, the first "0" or "1" in the decoded text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAPER_SYSTEM = (
    "You are a medical evaluator tasked with assessing whether a candidate answer is equivalent to the "
    "ground truth.\n"
    "Assign a score strictly according to the criteria below. Do not include any explanations, comments, "
    "or extra text in your response.\n"
    "\n"
    "Scoring criteria:\n"
    "Score 0: Not equivalent\n"
    "Score 1: Equivalent\n"
    "\n"
    "Definition of equivalence:\n"
    "Two answers are considered equivalent if the essential expected information is covered. Minor "
    "differences in wording, or additional or missing details, are acceptable as long as the candidate "
    "answer would be considered an acceptable response to the question.\n"
    "\n"
    "Return only the score (0 or 1), nothing else."
)


def paper_user(question: str, candidate: str, truth: str) -> str:
    """The authors' user turn: the candidate before the ground truth."""
    return f"Question: {question.strip()}\nCandidate_answer: {candidate.strip()}\nGround_truth: {truth.strip()}"


def paper_messages(question: str, reference: str, candidate: str) -> list[dict[str, str]]:
    """The two chat turns (system, user) the authors sent their judge."""
    return [
        {"role": "system", "content": PAPER_SYSTEM},
        {"role": "user", "content": paper_user(question, candidate, reference)},
    ]


def first_verdict(text: str) -> int | None:
    """The first "0" or "1" character in the judge's output, else no verdict."""
    return next((int(char) for char in text if char in "01"), None)


@dataclass(frozen=True)
class AuthorsJudgement:
    """One item judged the authors' way: the greedy token, its verdict, and that step's raw logits."""

    token: int
    verdict: int | None
    logits: Any


def authors_greedy(model: Any, tokenizer: Any, question: str, reference: str, candidate: str) -> AuthorsJudgement:
    """The authors' loop for one item: greedy, one new token, decoded without special tokens."""
    import torch

    messages = paper_messages(question, reference, candidate)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = model.generate(
            **ids,
            do_sample=False,
            max_new_tokens=1,
            pad_token_id=tokenizer.eos_token_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
    token = int(output.sequences[0, ids["input_ids"].shape[1]])
    verdict = first_verdict(tokenizer.decode([token], skip_special_tokens=True))
    return AuthorsJudgement(token, verdict, output.logits[0][0].float())
