"""Prompt rendering: the one place that turns a record into text, for evaluation and training.

A prompt is the French instruction for the task type, an optional context, the question, the
options as "(A) text" lines and the answer cue. The target is the canonical answer ("A",
"A, C") or the reference text. Without a chat template, lm-eval joins prompt and target with
a space; with one, the prompt is the user turn and the target the assistant turn, which is
exactly what :func:`render_messages` gives the trainer.
"""

from __future__ import annotations

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.mcq.answers import format_answer
from lm_eval_medinj.records import MedRecord, TaskType

# Where a prompt comes from: "conversation", a record's own turns where it has them (the paper's,
# the default); "canonical", :func:`render_prompt` for every record. lm-eval's ``--metadata prompt``
# and training's ``--prompt`` take these names.
PROMPT_SOURCES = ("conversation", "canonical")
DEFAULT_PROMPT_SOURCE = PROMPT_SOURCES[0]


def prompt_source_named(name: str | None) -> str:
    """The prompt source of that name; ``None`` is the default (the record's own conversation)."""
    if name is None:
        return DEFAULT_PROMPT_SOURCE
    if name not in PROMPT_SOURCES:
        raise UsageError(f"--metadata 'prompt' must be one of {', '.join(PROMPT_SOURCES)}; got {name!r}")
    return str(name)


INSTRUCTIONS: dict[TaskType, str] = {
    "mcqu": ("Réponds à la question à choix unique suivante. Donne uniquement la lettre de la bonne réponse."),
    "mcq": (
        "Réponds à la question à choix multiples suivante. Donne uniquement les lettres de "
        "toutes les bonnes réponses, dans l'ordre alphabétique, séparées par des virgules."
    ),
    "oeq": "Réponds à la question médicale suivante de façon concise et précise.",
}
ANSWER_CUE = "Réponse :"
# Where a model that runs on past its answer starts another canonical prompt section: an open
# answer to a canonical prompt stops there. One to the record's own conversation stops at the
# end of sequence, as the authors' did.
CANONICAL_SECTION_STARTS = ("\n\nQuestion :", "\n\nContexte :", "\n\nRéponds à la question")


def render_options(options: dict[str, str]) -> str:
    """Options as one "(A) text" line each, in source order."""
    return "\n".join(f"({letter}) {text}" for letter, text in options.items())


def render_prompt(record: MedRecord) -> str:
    """The full user prompt for a record, ending with the answer cue."""
    unnamed = [letter for letter, text in record.options.items() if not text.strip()]
    if unnamed:
        raise ValueError(
            f"record {record.id!r}, field 'options': the canonical prompt needs option texts, and options "
            f"{', '.join(unnamed)} have none (the record names them only in 'classes'); use its own "
            'conversation (the default prompt) instead of --metadata \'{"prompt": "canonical"}\''
        )
    parts = [INSTRUCTIONS[record.task]]
    if record.context:
        parts.append(f"Contexte : {record.context}")
    question = f"Question : {record.question}"
    if record.options:
        question += "\n" + render_options(record.options)
    parts.append(question)
    parts.append(ANSWER_CUE)
    return "\n\n".join(parts)


def render_target(record: MedRecord) -> str:
    """The expected answer: canonical letters for MCQ/MCQU, the reference text for OEQ."""
    if record.task == "oeq":
        if record.reference is None:
            raise ValueError(f"record {record.id!r}: open question without a reference")
        return record.reference
    return format_answer(record.gold)


def render_messages(record: MedRecord) -> list[dict[str, str]]:
    """The training conversation: user prompt, assistant target."""
    return [
        {"role": "user", "content": render_prompt(record)},
        {"role": "assistant", "content": render_target(record)},
    ]
