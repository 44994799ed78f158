"""What the model is trained on: each record's conversation, as TRL text or prompt-completion rows.

The prompt source is the evaluation side's (``lm_eval_medinj.prompts.PROMPT_SOURCES``):
``conversation`` takes the record's own messages verbatim (the canonical rendering where it has
none), ``canonical`` takes :func:`lm_eval_medinj.prompts.render_messages`. The loss is ``all``
(the authors' way: the chat-formatted conversation as one text, every token trained) or
``assistant`` (conversational prompt-completion, TRL's ``completion_only_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from lm_eval_medinj.prompts import render_messages
from lm_eval_medinj.records import MedRecord, Turn


def training_messages(record: MedRecord, prompt: str) -> list[Turn]:
    """The conversation to train on; it must end with its only assistant turn."""
    if prompt == "canonical" or not record.messages:
        return render_messages(record)
    messages = [dict(turn) for turn in record.messages]
    roles = [turn["role"] for turn in messages]
    if roles[-1] != "assistant" or roles.count("assistant") != 1:
        raise ValueError(
            f"{record.origin} ({record.provenance} {record.task}): record {record.id!r}, field 'messages': "
            f"roles {roles} do not end with the one assistant turn to train on; use prompt: canonical"
        )
    return messages


def to_dataset(
    records: Sequence[MedRecord],
    tokenizer: PreTrainedTokenizerBase,
    prompt: str = "conversation",
    loss: str = "all",
    text_field: str = "text",
) -> Dataset:
    """TRL rows: ``text_field`` holding the chat-formatted conversation (loss ``all``), or a
    conversational ``prompt`` / ``completion`` pair (loss ``assistant``)."""
    rows = []
    for record in records:
        messages = training_messages(record, prompt)
        if loss == "assistant":
            rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
        else:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
            rows.append({text_field: text})
    return Dataset.from_list(rows)
