"""The authors' parse and token mask (lm_eval_medinj.protocol.paper), case by case."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from lm_eval_medinj.chat import AnswerEndUnknownError, assistant_turn_end
from lm_eval_medinj.protocol.paper import allowed_token_ids, parse_authors_answer

LETTERS = "ABCDE"


@pytest.mark.parametrize(
    ("text", "multi", "expected"),
    [
        ("A, C", True, "AC"),
        ("c,a", True, "AC"),
        ("C\n\nA\n\nC", True, "AC"),  # order of appearance, duplicates removed
        ("(A) ; (B).", True, "AB"),
        ("A+B|C/D:E", True, "ABCDE"),
        ("  B  ", False, "B"),
        ("(b)", False, "B"),
        ("A, B", False, ""),  # a single-answer file needs exactly one letter
        (",", False, ""),
        ("", True, ""),
        ("F", True, ""),  # not an option
        ("La", False, ""),  # an alphabetic character that is not an option letter
        ("A1", True, ""),  # a character outside the accepted punctuation
        ("A-B", True, ""),
        ("A\tB", True, ""),
        ("É", True, ""),
    ],
)
def test_authors_parse(text: str, multi: bool, expected: str) -> None:
    assert parse_authors_answer(text, LETTERS, multi) == frozenset(expected)


def test_allowed_token_ids_are_letters_separators_and_end_tokens(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    allowed = allowed_token_ids(tokenizer, ["a", "b"])
    last = [
        tokenizer.encode(text, add_special_tokens=False)[-1] for text in ["A", " A", "B", " B", ",", ", ", " ", ",\n"]
    ]
    assert set(allowed) == {*last, tokenizer.eos_token_id}
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in allowed  # eos_token "<|im_end|>" holds "im_end"
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") not in allowed


def test_assistant_turn_end_comes_from_the_chat_template(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert assistant_turn_end(tokenizer) == "<|im_end|>"
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(AnswerEndUnknownError, match="writes nothing after an assistant turn"):
        assistant_turn_end(tokenizer)
