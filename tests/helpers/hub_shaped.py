"""MedInjection-FR Hub-shaped files written from FrenchMedMCQA questions (tests, benchmarks).

Each record carries its conversation as the Hub datasets do: the options only inside the user
turn, the answer as the assistant turn and in ``answer``, the letters in ``classes``. Every
third record opens with a system turn; every fifth writes its options as "A - text", a form
the readers do not parse, so only ``classes`` names its letters. Files are written where the
caller says, from a FrenchMedMCQA folder the caller has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYSTEM_TURN = "Tu es un expert médical. Réponds uniquement par la ou les lettres des bonnes réponses."
INSTRUCTIONS = {
    "mcqu": "Réponds à la question suivante en donnant la lettre de la bonne réponse.",
    "mcq": (
        "Réponds à la question suivante en donnant les lettres de toutes les bonnes réponses, "
        "séparées par des virgules."
    ),
}


def hub_record(raw: dict[str, Any], task: str, index: int) -> dict[str, Any]:
    """One FrenchMedMCQA question as a MedInjection-FR Hub record."""
    letters = sorted(raw["answers"])
    dash = index % 5 == 4
    options = "\n".join(f"{letter.upper()} - {raw['answers'][letter]}" if dash else
                        f"({letter.upper()}) {raw['answers'][letter]}" for letter in letters)  # fmt: skip
    answer = ", ".join(sorted(letter.upper() for letter in raw["correct_answers"]))
    messages = [
        {"role": "user", "content": f"{INSTRUCTIONS[task]}\n\n{raw['question'].strip()}\n{options}"},
        {"role": "assistant", "content": answer},
    ]
    if index % 3 == 0:
        messages.insert(0, {"role": "system", "content": SYSTEM_TURN})
    return {
        "id": f"fmm-{task}-{index:03d}-{raw['id'][:8]}",
        "messages": messages,
        "classes": [letter.upper() for letter in letters],
        "answer": answer,
    }


def write_hub_shaped(frenchmedmcqa_dir: Path, out_dir: Path, per_format: int) -> Path:
    """``Native/Test/{mcqu,mcq}/*_test.json`` with the first ``per_format`` test questions of each format."""
    questions = json.loads((frenchmedmcqa_dir / "test.json").read_text(encoding="utf-8"))
    for task, multi in (("mcqu", False), ("mcq", True)):
        chosen = [raw for raw in questions if (len(raw["correct_answers"]) > 1) == multi][:per_format]
        folder = out_dir / "Native" / "Test" / task
        folder.mkdir(parents=True, exist_ok=True)
        records = [hub_record(raw, task, index) for index, raw in enumerate(chosen)]
        (folder / f"{task}_test.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return out_dir
