"""MediQAl in the authors' real shape: read as they read it, and ids that repeat across configurations never collide."""

from __future__ import annotations

from pathlib import Path

from lm_eval_medinj.base_task import load_dataset
from lm_eval_medinj.benchmarks import benchmark_named


def test_the_real_shape_reads(mediqal_real_dir: Path) -> None:
    mcqu = load_dataset("mediqal", "mcqu", data_dir=str(mediqal_real_dir))["test"]
    mcqm = load_dataset("mediqal", "mcq", data_dir=str(mediqal_real_dir))["test"]
    oeq = load_dataset("mediqal", "oeq", data_dir=str(mediqal_real_dir))["test"]
    assert [doc["gold"] for doc in mcqm] == [["A", "B", "D"], ["A", "C", "E"], ["B", "D"]]  # "A,B,D", "A,C,E", "B,D"
    assert [doc["gold"] for doc in mcqu] == [["B"], ["A"], ["D"]]
    assert [doc["context"] for doc in mcqu][0::2] == ["", ""], "a null clinical case is no context"
    assert [doc["cluster"] for doc in mcqu][0::2] == ["", ""], "... and each such question is its own cluster"
    assert {doc["specialty"] for doc in mcqu} == {"Pharmacy", "Cardiology", "Hepato-Gastroenterology"}
    assert {doc["task"] for doc in mcqu} == {"mcqu"} and {doc["task"] for doc in mcqm} == {"mcq"}
    assert [doc["id"] for doc in mcqu] == [doc["id"] for doc in mcqm] == ["1", "2", "3"]
    assert [doc["id"] for doc in oeq] == ["1", "2"]


def test_uids_hold_the_configuration(mediqal_real_dir: Path) -> None:
    mediqal = benchmark_named("mediqal")
    records = [r for task in ("mcqu", "mcq", "oeq") for r in mediqal.load(task, "test", mediqal_real_dir)]
    assert len({record.id for record in records}) == 3, "ids repeat across mcqu, mcqm and oeq"
    assert len({record.uid for record in records}) == len(records) == 8
    assert {record.uid for record in records if record.id == "1"} == {
        "mediqal/mcqu/1",
        "mediqal/mcqm/1",
        "mediqal/oeq/1",
    }
    assert len({record.data_revision for record in records}) == 3, "one revision per file read"
