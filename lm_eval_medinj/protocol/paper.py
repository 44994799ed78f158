"""The paper protocol: the authors' MCQ decoding and parsing (their published ``Evaluate.py``), item for item.

Per record, greedy, batch size 1: the prompt is the record's non-assistant turns through the
chat template; the budget is 1 new token on single-answer files and ``2 * len(classes)`` on
multi-answer files; generation stops at the tokenizer's ``eos_token_id`` only; the new tokens
are decoded with special tokens skipped, then stripped. Constrained decoding masks the logits
to :func:`allowed_token_ids`. Both modes parse with :func:`parse_authors_answer`. The budget is
:func:`lm_eval_medinj.protocol.answer_token_budget`, the same as the strict protocol's.

Tasks ask a backend for the mask by putting :func:`token_mask_constraint` into a request's
generation kwargs (under :data:`lm_eval_medinj.protocol.constraints.CONSTRAINT_KEY`); the backend
turns the letters into its tokenizer's ids with :func:`allowed_token_ids`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lm_eval_medinj.protocol.constraints import TOKEN_MASK, Constraint

# Separators whose last token the mask allows, as the authors list them.
SEPARATORS = (",", ", ", " ", ",\n")
# Special-token values containing one of these (case-insensitive) are allowed: the end tokens.
END_TOKEN_MARKERS = ("eos", "eot", "im_end")
# Characters besides option letters that the authors' parse accepts.
ALLOWED_PUNCTUATION = frozenset(",;/|+.():") | {" ", "\n"}


def token_mask_constraint(option_letters: Sequence[str]) -> Constraint:
    """The request constraint for the authors' mask over these option letters."""
    return {TOKEN_MASK: [letter.upper() for letter in option_letters]}


def _last_id(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[-1] if ids else None


def allowed_token_ids(tokenizer: Any, option_letters: Iterable[str]) -> list[int]:
    """The token ids the authors' logits mask lets through, sorted.

    For each letter L, the last id of ``encode(L)`` and of ``encode(" " + L)``; the last id
    of each separator; ``eos_token_id``; and every string value of ``special_tokens_map``
    containing "eos", "eot" or "im_end" (case-insensitive), converted to its id.
    """
    texts = [text for letter in option_letters for text in (letter.upper(), " " + letter.upper())]
    ids = {_last_id(tokenizer, text) for text in [*texts, *SEPARATORS]}
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no eos_token_id: the authors' mask needs one")
    ids.add(tokenizer.eos_token_id)
    for value in tokenizer.special_tokens_map.values():
        if isinstance(value, str) and any(marker in value.lower() for marker in END_TOKEN_MARKERS):
            ids.add(tokenizer.convert_tokens_to_ids(value))
    ids.discard(None)
    return sorted(ids)


def parse_authors_answer(text: str, option_letters: Iterable[str], multi: bool) -> frozenset[str]:
    """The authors' parse; an empty set is an empty (wrong) prediction.

    Upper-case the text. An alphabetic character that is not an option letter, or any other
    character outside ``, ; / | + . ( ) :``, space and newline, empties the prediction.
    Otherwise it is the letters found (duplicates removed); a single-answer file needs exactly
    one letter.
    """
    letters = {letter.upper() for letter in option_letters}
    found: list[str] = []
    for char in text.strip().upper():
        if char.isalpha() and char in letters:
            if char not in found:
                found.append(char)
        elif char.isalpha() or char not in ALLOWED_PUNCTUATION:
            return frozenset()
    if not multi and len(found) != 1:
        return frozenset()
    return frozenset(found)
