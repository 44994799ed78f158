"""Small train and validation pools of all three provenances in the Hub layout, written by code.

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
# Validation splits: small, so evaluation during a test run costs little.
DEFAULT_VALIDATION_SIZES: dict[str, dict[str, int]] = {
    "native": {"mcq": 3, "mcqu": 2, "oeq": 1},
    "translated": {"mcq": 2, "mcqu": 3, "oeq": 1},
    "synthetic": {"mcq": 2, "mcqu": 2, "oeq": 1},
}
LETTERS = "ABCDE"


def _record(provenance: str, task: str, index: int, split: str = "Train") -> dict[str, object]:
    tag = {"Train": "", "Validation": "val-", "Test": "test-"}[split]
    record_id = f"{provenance}-{task}-{tag}{index:04d}"
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


def write_pools(
    root: Path,
    sizes: Mapping[str, Mapping[str, int]] = DEFAULT_SIZES,
    validation_sizes: Mapping[str, Mapping[str, int]] = DEFAULT_VALIDATION_SIZES,
    test_sizes: Mapping[str, Mapping[str, int]] | None = None,
) -> Path:
    """Write ``<root>/<Subset>/<Split>/<task>/<task>_<split>.json`` (Train, Validation, and Test when
    ``test_sizes`` is given) for each provenance and task."""
    splits = [("Train", sizes), ("Validation", validation_sizes)] + ([("Test", test_sizes)] if test_sizes else [])
    for split, split_sizes in splits:
        for provenance, by_task in split_sizes.items():
            for task, count in by_task.items():
                folder = root / SUBSETS[provenance] / split / task
                folder.mkdir(parents=True, exist_ok=True)
                records = [_record(provenance, task, index, split) for index in range(count)]
                path = folder / f"{task}_{split.lower()}.json"
                path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return root


if __name__ == "__main__":
    print(write_pools(Path(sys.argv[1])))
