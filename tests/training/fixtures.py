"""Small train pools of all three provenances in the Hub layout, written by code.

``python -m tests.training.fixtures OUT_DIR`` writes the default pools for a quick
``train/sft.py --data_dir OUT_DIR --total 60`` run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

SUBSETS = {"native": "Native", "translated": "Translated", "synthetic": "Synthetic"}
ORIGINS = {
    "native": ("FrenchMedMCQA", "MediQAl"),
    "translated": ("MedQA", "MedMCQA"),
    "synthetic": ("GPT-4o",),
}
# Pool sizes per provenance and task type: unequal, so stratification is visible.
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "native": {"mcq": 30, "mcqu": 15, "oeq": 6},
    "translated": {"mcq": 12, "mcqu": 36, "oeq": 5},
    "synthetic": {"mcq": 20, "mcqu": 20, "oeq": 4},
}
LETTERS = "ABCDE"


def _record(provenance: str, task: str, index: int) -> dict[str, object]:
    record_id = f"{provenance}-{task}-{index:04d}"
    origin = ORIGINS[provenance][index % len(ORIGINS[provenance])]
    question = f"Question {index} ({provenance}) : quel traitement pour la patiente {index} ?"
    if task == "oeq":
        answer = f"Un traitement symptomatique et une surveillance ({index})."
        return {
            "id": record_id,
            "source": origin,
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "answer": answer,
        }
    options = "\n".join(f"({letter}) Médicament {letter.lower()}{index}" for letter in LETTERS)
    answer = f"{LETTERS[index % 5]}, {LETTERS[(index + 2) % 5]}" if task == "mcq" else LETTERS[index % 5]
    if task == "mcq":
        answer = ", ".join(sorted(answer.split(", ")))
    return {
        "id": record_id,
        "source": origin,
        "messages": [
            {"role": "system", "content": "Tu es un assistant médical."},
            {"role": "user", "content": f"{question}\n{options}"},
            {"role": "assistant", "content": answer},
        ],
        "classes": list(LETTERS),
        "answer": answer,
    }


def write_pools(root: Path, sizes: Mapping[str, Mapping[str, int]] = DEFAULT_SIZES) -> Path:
    """Write ``<root>/<Subset>/Train/<task>/<task>_train.json`` for each provenance and task."""
    for provenance, by_task in sizes.items():
        for task, count in by_task.items():
            folder = root / SUBSETS[provenance] / "Train" / task
            folder.mkdir(parents=True, exist_ok=True)
            records = [_record(provenance, task, index) for index in range(count)]
            (folder / f"{task}_train.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return root


if __name__ == "__main__":
    print(write_pools(Path(sys.argv[1])))
