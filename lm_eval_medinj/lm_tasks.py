"""lm-eval hooks referenced by the YAML tasks (``!function lm_eval_medinj.lm_tasks.*``).

Each task's ``dataset_kwargs`` names the benchmark, the task type and the provenances; the
user's ``--metadata`` adds ``data_dir``, ``skip_invalid``, ``protocol`` and ``prompt`` (schema:
:mod:`lm_eval_medinj.metadata`). lm-eval passes both to :func:`load_dataset`, which writes the
protocol and the prompt source into every document, so the task class, the scoring hooks and
the logged samples all read them there.
"""

from __future__ import annotations

from typing import Any

import datasets

from lm_eval_medinj.answers import candidate_answers, parse_answer
from lm_eval_medinj.authors_protocol import parse_authors_answer
from lm_eval_medinj.chat import plain_text
from lm_eval_medinj.metadata import check_metadata
from lm_eval_medinj.metrics import exact_match, hamming_score
from lm_eval_medinj.prompts import render_prompt, render_target
from lm_eval_medinj.records import MedRecord, Provenance, TaskType
from lm_eval_medinj.sources import (
    Split,
    load_frenchmedmcqa,
    load_medinjection,
    load_mediqal,
    resolve_data_dir,
    resolve_skip_invalid,
)

SPLITS: tuple[Split, ...] = ("test", "validation")
# "paper": the authors' decoding and parse (lm_eval_medinj.authors_protocol); "strict": this
# package's outlines-constrained sorted letter sets and strict parse.
PROTOCOLS = ("paper", "strict")
# "conversation": a record's own turns where it has them; "canonical": lm_eval_medinj.prompts.
PROMPT_SOURCES = ("conversation", "canonical")


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str:
    """``value`` (default: the first allowed one), refused unless allowed."""
    chosen = allowed[0] if value is None else str(value)
    if chosen not in allowed:
        raise ValueError(f"--metadata {name!r} must be one of {', '.join(allowed)}; got {value!r}")
    return chosen


def load_dataset(
    benchmark: str,
    task: TaskType,
    provenances: list[Provenance] | None = None,
    data_dir: str | None = None,
    skip_invalid: bool | str | None = None,
    protocol: str | None = None,
    prompt: str | None = None,
    **_metadata: Any,
) -> datasets.DatasetDict:
    """The test and validation documents of one task, from the Hub or ``data_dir``.

    ``_metadata`` is the rest of the task's metadata (lm-eval passes it all): a misspelt key of
    this package stops here, naming the known ones (:mod:`lm_eval_medinj.metadata`).
    """
    check_metadata(
        {"data_dir": data_dir, "skip_invalid": skip_invalid, "protocol": protocol, "prompt": prompt, **_metadata}
    )
    protocol = _choice("protocol", protocol, PROTOCOLS)
    prompt = _choice("prompt", prompt, PROMPT_SOURCES)
    root = resolve_data_dir(data_dir)
    skip = resolve_skip_invalid(skip_invalid)
    splits: dict[str, list[MedRecord]] = {}
    for split in SPLITS:
        if benchmark == "medinjection":
            splits[split] = [
                record
                for provenance in provenances or ["native", "translated"]
                for record in load_medinjection(provenance, task, split, root, skip)
            ]
        elif benchmark == "frenchmedmcqa":
            splits[split] = load_frenchmedmcqa(task, split, root, skip)
        elif benchmark == "mediqal":
            splits[split] = load_mediqal(task, split, root, skip)
        else:
            raise ValueError(f"unknown benchmark {benchmark!r} in the task's dataset_kwargs")
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list([_document(r, protocol, prompt) for r in records])
            for split, records in splits.items()
        }
    )


def _document(record: MedRecord, protocol: str, prompt: str) -> dict[str, Any]:
    source = "conversation" if prompt == "conversation" and record.messages else "canonical"
    if source == "canonical":
        render_prompt(record)  # fails now, naming the record, if it cannot be rendered
    return {**record.to_doc(), "protocol": protocol, "prompt_source": source}


def doc_prompt_turns(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The document's non-assistant turns, verbatim."""
    return MedRecord.from_doc(doc).prompt_turns


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt as plain text: the record's turns joined by blank lines, or the canonical prompt."""
    if doc.get("prompt_source") == "conversation":
        return plain_text(doc_prompt_turns(doc))
    return render_prompt(MedRecord.from_doc(doc))


def fewshot_answer(doc: dict[str, Any]) -> str:
    """A few-shot example's answer: its own first assistant turn, else the canonical target."""
    if doc.get("prompt_source") == "conversation":
        answers = [turn["content"] for turn in doc["messages"] if turn["role"] == "assistant"]
        if answers:
            return answers[0]
    return doc_to_target(doc)


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """Every valid answer: each letter (MCQU) or each sorted letter subset (MCQ)."""
    return candidate_answers(doc["option_letters"], multi=doc["task"] == "mcq")


def doc_to_target(doc: dict[str, Any]) -> str:
    """The gold answer as trained: "A", "A, C", or the reference text of an open question."""
    return render_target(MedRecord.from_doc(doc))


def _scores(doc: dict[str, Any], predicted: frozenset[str] | None) -> dict[str, float]:
    scores = {"em": exact_match(doc["gold"], predicted)}
    if doc["task"] == "mcq":
        scores["hamming"] = hamming_score(doc["gold"], predicted)
    return scores


def process_choice_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, float]:
    """Exact choice scoring: the prediction is the candidate with the highest log-likelihood.

    Each candidate was scored with its end (see :class:`lm_eval_medinj.medinj_task.MedinjTask`),
    so this is the most probable complete answer.
    """
    choices = doc_to_choice(doc)
    loglikelihoods = [result[0] for result in results]
    best = max(range(len(choices)), key=loglikelihoods.__getitem__)
    return _scores(doc, parse_answer(choices[best], doc["option_letters"]))


def process_generation_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """The protocol's parse of a generated answer: the authors' (``paper``) or the strict one."""
    if doc["protocol"] == "paper":
        return _scores(doc, parse_authors_answer(results[0], doc["option_letters"], doc["task"] == "mcq"))
    return _scores(doc, parse_answer(results[0], doc["option_letters"]))
