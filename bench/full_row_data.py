"""Test sets at their real sizes, in the layouts the readers expect, from recycled FrenchMedMCQA text.

Two workloads, written under one folder each:

- ``medinjection``: MedInjection-FR's test splits in the Hub layout,
  ``Native/Test/{mcqu,mcq,oeq}/*_test.json`` and ``Translated/Test/mcqu/mcqu_test.json``, each
  record a conversation (``messages``: user turn, assistant turn) with ``classes`` and ``answer``;
- ``mediqal``: MediQAl's test split in its own layout, ``{mcqu,mcqm,oeq}/test.json`` (flat fields:
  ``clinical_case``, ``question``, ``answer_a``..``answer_e``, ``correct_answers``; OEQ ``answer``).

Texts are FrenchMedMCQA's (train, dev and test: 3,105 real exam questions), taken in order and
cycled through as often as a size needs:

- an MCQ/MCQU item is one FrenchMedMCQA question, its five options and its correct letters
  (MCQU keeps the first correct letter); a Translated MCQU item, standing for translated
  English vignettes, has the text of two consecutive questions as its stem and four options;
- a clinical case (MediQAl, and MedInjection-FR's Native OEQ, which come from the same exams) is
  the text of six consecutive questions, about 700 characters, shared by three consecutive
  items; every other item has one ("Reasoning"), the rest none ("Understanding");
- an OEQ reference is the correct options of consecutive questions, written as sentences, until
  it reaches 120, 240, 360 or 480 characters in turn (300 on average, about 50 words).

These lengths and shares are assumptions (the real texts are not available offline); the run
records the prompt lengths in tokens that result, so they can be compared with the real ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# MediQAl's test sizes (README: 4,343 / 3,384 / 4,969).
MEDIQAL_TEST = {"mcqu": 4343, "mcqm": 3384, "oeq": 4969}
# MedInjection-FR's test sizes. Not documented in this repository: Native is assumed to hold
# MediQAl's test sets (its core, by the Native dataset card); Translated MCQU the rest of the
# 27,931 test rows of the ALL dataset (its Hub card): 27,931 - 12,696 = 15,235.
MEDINJECTION_TEST = {
    ("Native", "mcqu"): 4343,
    ("Native", "mcq"): 3384,
    ("Native", "oeq"): 4969,
    ("Translated", "mcqu"): 15235,
}
SIZES_SOURCE = {
    "mediqal": "MediQAl's test sizes, README.md (4,343 MCQU / 3,384 MCQM / 4,969 OEQ)",
    "medinjection": (
        "assumed: Native = MediQAl's test sizes (the Native subset's core); Translated MCQU = the ALL "
        "dataset's 27,931 test rows (MedInjection-FR/ALL Hub card) minus Native's 12,696; the repository "
        "documents no MedInjection-FR test counts"
    ),
}
INSTRUCTIONS = {
    "mcqu": "Réponds à la question suivante en donnant la lettre de la bonne réponse.",
    "mcq": (
        "Réponds à la question suivante en donnant les lettres de toutes les bonnes réponses, "
        "séparées par des virgules."
    ),
    "oeq": "Réponds à la question médicale suivante.",
}
REFERENCE_TARGETS = (120, 240, 360, 480)  # characters, in turn
CASE_QUESTIONS = 6  # FrenchMedMCQA question texts per clinical case
CASE_SHARED_BY = 3  # consecutive items per clinical case
LETTERS = "ABCDE"


@dataclass(frozen=True)
class Source:
    """One FrenchMedMCQA question: its text, its options (A-E) and its correct letters."""

    question: str
    options: tuple[str, ...]
    correct: tuple[str, ...]
    subject: str


def read_sources(frenchmedmcqa_dir: Path) -> list[Source]:
    """Every FrenchMedMCQA question of train, dev and test, in file order."""
    sources = []
    for name in ("train.json", "dev.json", "test.json"):
        for raw in json.loads((frenchmedmcqa_dir / name).read_text(encoding="utf-8")):
            letters = sorted(raw["answers"])
            sources.append(
                Source(
                    question=raw["question"].strip(),
                    options=tuple(raw["answers"][letter].strip() for letter in letters),
                    correct=tuple(sorted(letter.upper() for letter in raw["correct_answers"])),
                    subject=raw.get("subject_name") or "pharmacie",
                )
            )
    return sources


def corpus_text(sources: list[Source]) -> str:
    """Every question and option, in order: French exam text for stand-in answers."""
    return " ".join(" ".join((source.question, *source.options)) for source in sources)


def scaled_size(full: int, scale: float) -> int:
    """``full`` items at ``scale`` (at least 2, so every task keeps a choice of items)."""
    return full if scale == 1 else max(2, math.ceil(full * scale))


class TextPool:
    """Cycles through the sources; each workload draws its texts from its own pass."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self.position = 0

    def take(self) -> Source:
        source = self.sources[self.position % len(self.sources)]
        self.position += 1
        return source

    def reference(self, index: int) -> str:
        """Correct options of consecutive questions, as sentences, up to this item's target length."""
        target = REFERENCE_TARGETS[index % len(REFERENCE_TARGETS)]
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < target:
            source = self.take()
            sentences += [f"{source.options[LETTERS.index(letter)].rstrip('.')}." for letter in source.correct]
        return " ".join(sentences)

    def case(self) -> str:
        return " ".join(self.take().question for _ in range(CASE_QUESTIONS))


def cases(pool: TextPool, count: int) -> Iterator[str]:
    """A clinical case for every other item, each shared by :data:`CASE_SHARED_BY` consecutive ones."""
    current = ""
    for index in range(count):
        if index % (2 * CASE_SHARED_BY) == 0:
            current = pool.case()
        yield current if index % (2 * CASE_SHARED_BY) < CASE_SHARED_BY else ""


def _options_text(options: tuple[str, ...]) -> str:
    return "\n".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(options))


def _hub_mcq(record_id: str, task: str, stem: str, options: tuple[str, ...], gold: tuple[str, ...]) -> dict[str, Any]:
    answer = ", ".join(gold)
    return {
        "id": record_id,
        "messages": [
            {"role": "user", "content": f"{INSTRUCTIONS[task]}\n\n{stem}\n{_options_text(options)}"},
            {"role": "assistant", "content": answer},
        ],
        "classes": list(LETTERS[: len(options)]),
        "answer": answer,
    }


def medinjection_records(pool: TextPool, folder: str, task: str, count: int) -> list[dict[str, Any]]:
    """``count`` Hub-shaped records of one MedInjection-FR test file."""
    records = []
    case_texts = cases(pool, count) if task == "oeq" else iter([""] * count)
    for index, case in zip(range(count), case_texts, strict=True):
        record_id = f"{folder.lower()}-{task}-{index:05d}"
        if task == "oeq":
            question = pool.take().question
            reference = pool.reference(index)
            user = f"{INSTRUCTIONS['oeq']}\n\n" + (f"{case}\n\n" if case else "") + question
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reference}]
            records.append({"id": record_id, "messages": messages, "answer": reference})
        elif folder == "Translated":
            first, second = pool.take(), pool.take()
            gold = second.correct[0]
            keep = [letter for letter in LETTERS if letter != gold][:3] + [gold]
            options = tuple(second.options[LETTERS.index(letter)] for letter in sorted(keep))
            new_gold = LETTERS[sorted(keep).index(gold)]
            records.append(_hub_mcq(record_id, task, f"{first.question} {second.question}", options, (new_gold,)))
        else:
            source = pool.take()
            gold = source.correct[:1] if task == "mcqu" else source.correct
            records.append(_hub_mcq(record_id, task, source.question, source.options, gold))
    return records


def mediqal_records(pool: TextPool, config: str, count: int) -> list[dict[str, Any]]:
    """``count`` records of one MediQAl test file (``mcqu``, ``mcqm`` or ``oeq``)."""
    records = []
    for index, case in zip(range(count), cases(pool, count), strict=True):
        source = pool.take()
        record: dict[str, Any] = {
            "id": f"{config}-test-{index:05d}",
            "clinical_case": case,
            "question": source.question,
        }
        kind = {"medical_subject": source.subject, "question_type": "Reasoning" if case else "Understanding"}
        if config == "oeq":
            record |= {"cc_question_number": index % CASE_SHARED_BY + 1, "answer": pool.reference(index)}
        else:
            record |= {f"answer_{letter.lower()}": text for letter, text in zip(LETTERS, source.options, strict=True)}
            gold = source.correct[:1] if config == "mcqu" else source.correct
            record |= {"correct_answers": ",".join(letter.lower() for letter in gold), "task": config}
        records.append(record | kind)
    return records


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")


def write_medinjection(sources: list[Source], root: Path, scale: float) -> dict[str, int]:
    """MedInjection-FR's test files under ``root``; items per ``Folder/task``."""
    pool = TextPool(sources)
    counts = {}
    for (folder, task), full in MEDINJECTION_TEST.items():
        count = scaled_size(full, scale)
        _write(root / folder / "Test" / task / f"{task}_test.json", medinjection_records(pool, folder, task, count))
        counts[f"{folder}/{task}"] = count
    return counts


def write_mediqal(sources: list[Source], root: Path, scale: float) -> dict[str, int]:
    """MediQAl's test files under ``root``; items per config."""
    pool = TextPool(sources)
    counts = {}
    for config, full in MEDIQAL_TEST.items():
        count = scaled_size(full, scale)
        _write(root / config / "test.json", mediqal_records(pool, config, count))
        counts[config] = count
    return counts
