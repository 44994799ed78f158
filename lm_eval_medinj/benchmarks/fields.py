"""Field readers shared by the benchmarks' record parsers: each refuses, naming the field, what it cannot read.

Nothing here guesses: a text field holds a string (``null`` counts as absent), an answer is one of
the documented forms, options run A, B, C... in one style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval_medinj.records import TASK_TYPES, RecordError, TaskType, Turn

# "(A) text", "A) text" or "A. text"
_OPTION_LINE = re.compile(r"^\s*(?:\((?P<paren>[A-Z])\)|(?P<bare>[A-Z])(?P<mark>[).]))\s+(?P<text>\S.*?)\s*$")
_ANSWER_LETTERS = re.compile(r"^\s*\(?([A-Za-z])\)?(?:\s*[,;/ ]\s*\(?([A-Za-z])\)?)*\s*\.?\s*$")
TASK_ALIASES: dict[str, TaskType] = {
    "mcq": "mcq",
    "qcm": "mcq",
    "multiple": "mcq",
    "mcqm": "mcq",
    "mcqu": "mcqu",
    "qcu": "mcqu",
    "simple": "mcqu",
    "single": "mcqu",
    "oeq": "oeq",
    "qro": "oeq",
    "open": "oeq",
    "open-ended": "oeq",
}


def record_id(raw: Mapping[str, Any], source: str, index: int) -> str:
    """The record's id (``id``, ``ID``, ``uid``, ``question_id`` or ``qid``), else ``<file stem>#<index>``."""
    for key in ("id", "ID", "uid", "question_id", "qid"):
        value = raw.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RecordError(source, f"#{index}", key, f"expected a text or integer id, got {type(value).__name__}")
        return str(value)
    return f"{Path(source).stem}#{index}"


def text(raw: Mapping[str, Any], key: str, source: str, record_id: str) -> str:
    """A text field, stripped; ``""`` when absent or ``null``; anything else that is not text is refused."""
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(source, record_id, key, f"expected text, got {type(value).__name__} {_short(value)}")
    return value.strip()


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def task_type(value: Any, source: str, record_id: str, field_name: str) -> TaskType:
    """A task type from its aliases ("QCU", "qcm", "QRO", ...)."""
    task = TASK_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if task is None:
        raise RecordError(source, record_id, field_name, f"unknown task type {value!r}; expected one of {TASK_TYPES}")
    return task


def split_options(prompt: str) -> tuple[str, dict[str, str]]:
    """Split a prompt into its question and its options "(A) text", "A) text" or "A. text".

    Options are written in one style and run A, B, C... in line order, without gaps; other lines stay
    in the question. Where several such runs exist (a question line "A. Fleming a découvert..." before
    options "A. ...", "B. ..."), the longest wins, then the one that starts last. Fewer than two
    options: none.
    """
    lines = prompt.splitlines()
    matches = [(i, _OPTION_LINE.match(line)) for i, line in enumerate(lines)]
    best: list[tuple[int, str, str]] = []
    for style in ("()", ")", "."):
        found = [
            (i, m.group("paren") or m.group("bare"), m.group("text"))
            for i, m in matches
            if m and ("()" if m.group("paren") else m.group("mark")) == style
        ]
        for start, (index, letter, _) in enumerate(found):
            if letter != "A":
                continue
            run = [found[start]]
            for later in found[start + 1 :]:
                if later[1] == chr(ord(run[-1][1]) + 1):
                    run.append(later)
            if len(run) > len(best) or (len(run) == len(best) and best and index > best[0][0]):
                best = run
    if len(best) < 2:
        return prompt.strip(), {}
    taken = {index for index, _, _ in best}
    question = "\n".join(line for i, line in enumerate(lines) if i not in taken).strip()
    return question, {letter: option for _, letter, option in best}


def parse_gold(
    value: Any, options: Mapping[str, str], source: str, record_id: str, field_name: str = "answer"
) -> tuple[str, ...]:
    """Gold letters from a letter string ("A, C", "(b)"), a list of letters or indices, or an option's text."""
    if isinstance(value, str):
        if _ANSWER_LETTERS.match(value):
            return tuple(sorted({letter.upper() for letter in re.findall(r"[A-Za-z]", value)}))
        option_line = _OPTION_LINE.match(value)
        if option_line and (option_line.group("paren") or option_line.group("bare")) in options:
            return (option_line.group("paren") or option_line.group("bare"),)
        by_text = [letter for letter, option in options.items() if option.strip() and option.strip() == value.strip()]
        if by_text:
            return tuple(by_text)
    elif isinstance(value, list) and value:
        letters: set[str] = set()
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 26:
                letters.add(chr(ord("A") + item))
            elif isinstance(item, str) and len(item.strip().strip("()")) == 1:
                letters.add(item.strip().strip("()").upper())
            else:
                raise RecordError(source, record_id, field_name, f"unparseable answer item {item!r}")
        return tuple(sorted(letters))
    raise RecordError(source, record_id, field_name, f"unparseable answer {_short(value)}")


def conversation(value: Any, source: str, record_id: str) -> tuple[Turn, ...]:
    """The record's turns as {role, content} text pairs, verbatim."""
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        raise RecordError(source, record_id, "messages", "expected a list of {role, content} objects with text values")
    return tuple({"role": m["role"], "content": m["content"]} for m in value)


def option_texts(values: Mapping[str, Any], source: str, record_id: str, field_name: str) -> dict[str, str]:
    """Letter -> text, each text a string (``null`` or a number is refused, not turned into "None")."""
    options: dict[str, str] = {}
    for key, value in values.items():
        letter = str(key).strip().upper()
        if not isinstance(value, str):
            raise RecordError(
                source, record_id, field_name, f"option {letter}: expected text, got {type(value).__name__}"
            )
        options[letter] = value.strip()
    return options
