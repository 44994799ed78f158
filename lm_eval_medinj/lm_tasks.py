"""lm-eval hooks referenced by the YAML tasks (``!function lm_eval_medinj.lm_tasks.*``).

Each task's ``dataset_kwargs`` names the benchmark, the task type and the provenances; the
user's ``--metadata`` adds ``data_dir`` and ``skip_invalid``. lm-eval passes both to
:func:`load_dataset`.
"""

from __future__ import annotations

from typing import Any

import datasets

from lm_eval_medinj.answers import candidate_answers, parse_answer
from lm_eval_medinj.metrics import exact_match, hamming_score
from lm_eval_medinj.prompts import render_prompt, render_target
from lm_eval_medinj.records import MedRecord, Provenance, TaskType
from lm_eval_medinj.sources import (
    Split,
    load_frenchmedmcqa,
    load_medinjection,
    resolve_data_dir,
    resolve_skip_invalid,
)

SPLITS: tuple[Split, ...] = ("test", "validation")


def load_dataset(
    benchmark: str,
    task: TaskType,
    provenances: list[Provenance] | None = None,
    data_dir: str | None = None,
    skip_invalid: bool | str | None = None,
    **_metadata: Any,
) -> datasets.DatasetDict:
    """The test and validation documents of one task, from the Hub or ``data_dir``."""
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
        else:
            raise ValueError(f"unknown benchmark {benchmark!r} in the task's dataset_kwargs")
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list([r.to_doc() for r in records]) for split, records in splits.items()}
    )


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt, rendered by the module that also renders training data."""
    return render_prompt(MedRecord.from_doc(doc))


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
    """Exact choice scoring: the prediction is the candidate with the highest log-likelihood."""
    choices = doc_to_choice(doc)
    loglikelihoods = [result[0] for result in results]
    best = max(range(len(choices)), key=loglikelihoods.__getitem__)
    return _scores(doc, parse_answer(choices[best], doc["option_letters"]))


def process_generation_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Strict parse of a generated answer: any text but option letters scores zero."""
    return _scores(doc, parse_answer(results[0], doc["option_letters"]))
