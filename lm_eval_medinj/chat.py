"""Conversations as prompts: plain-text joining and the end of an assistant turn.

A MedInjection-FR record's prompt is its non-assistant turns. With a chat template they are
rendered by the model's template (the paper's setting); without one they are joined by blank
lines. Choice scoring scores each answer followed by the end of the assistant turn, which
:func:`assistant_turn_end` reads off the tokenizer's own template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_medinj.records import Turn

TURN_SEPARATOR = "\n\n"
_ANSWER_MARK = "MEDINJ_ANSWER_MARK"


class AnswerEndUnknownError(RuntimeError):
    """The backend cannot tell where an assistant turn ends, so answers cannot be scored whole."""


def plain_text(turns: Sequence[Turn]) -> str:
    """The turns' contents joined by blank lines (the prompt without a chat template)."""
    return TURN_SEPARATOR.join(turn["content"] for turn in turns)


def assistant_turn_end(tokenizer: Any, **template_args: Any) -> str:
    """What the tokenizer's chat template writes after an assistant turn's text, stripped.

    E.g. "<|im_end|>" (Qwen, SmolLM2), "<|eot_id|>" (Llama 3), "<end_of_turn>" (Gemma).
    """
    chat = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _ANSWER_MARK}]
    rendered = tokenizer.apply_chat_template(chat, tokenize=False, **template_args)
    if _ANSWER_MARK not in rendered:
        raise AnswerEndUnknownError("the chat template does not write the assistant's text verbatim")
    end = rendered[rendered.rindex(_ANSWER_MARK) + len(_ANSWER_MARK) :].strip()
    if not end:
        raise AnswerEndUnknownError("the chat template writes nothing after an assistant turn")
    return end


def backend_turn_end(chat_template: Any) -> str:
    """The end of an assistant turn for the backend whose ``apply_chat_template`` lm-eval passed."""
    lm = getattr(chat_template, "__self__", None)
    tokenizer = getattr(lm, "tokenizer", None)
    backend = type(lm).__name__ if lm is not None else repr(chat_template)
    if not hasattr(tokenizer, "apply_chat_template"):
        raise AnswerEndUnknownError(
            f"choice scoring under a chat template scores each answer followed by the end of the "
            f"assistant turn, and backend {backend} exposes no tokenizer whose chat template would "
            "say what that end is. Use a backend with a Hugging Face tokenizer (hf, vllm, "
            "medinj-hf, medinj-vllm), or the _gen / _greedy tasks."
        )
    try:
        return assistant_turn_end(tokenizer, **(getattr(lm, "chat_template_args", None) or {}))
    except AnswerEndUnknownError as error:
        raise AnswerEndUnknownError(f"backend {backend}: {error}; choice scoring cannot score whole answers") from None
