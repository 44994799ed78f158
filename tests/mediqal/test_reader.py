"""The MediQAl reader: its fields, tolerant answers, clusters by clinical case, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.base_task import doc_to_text, load_dataset
from lm_eval_medinj.benchmarks.layout import DataNotFoundError
from lm_eval_medinj.benchmarks.single_file import ReadOptions, read_records
from lm_eval_medinj.records import RecordError
from tests.helpers.mediqal import CASE_CARDIO, mcqm_records, mcqu_records


def test_answers_in_every_form_are_read_as_sorted_letters(mediqal_dir: Path) -> None:
    mcqm = load_dataset("mediqal", "mcq", data_dir=str(mediqal_dir))["test"]
    # "a,b,d", "A, C", ["c", "e"], "ace"
    assert [doc["gold"] for doc in mcqm] == [["A", "B", "D"], ["A", "C"], ["C", "E"], ["A", "C", "E"]]
    mcqu = load_dataset("mediqal", "mcqu", data_dir=str(mediqal_dir))["test"]
    assert [doc["gold"] for doc in mcqu] == [["A"], ["B"], ["B"], ["A"], ["D"]]
    assert {doc["task"] for doc in mcqu} == {"mcqu"} and {doc["task"] for doc in mcqm} == {"mcq"}


def test_clinical_case_is_the_context_and_the_cluster(mediqal_dir: Path) -> None:
    docs = list(load_dataset("mediqal", "mcqu", data_dir=str(mediqal_dir))["test"])
    docs += list(load_dataset("mediqal", "mcq", data_dir=str(mediqal_dir))["test"])
    docs += list(load_dataset("mediqal", "oeq", data_dir=str(mediqal_dir))["test"])
    cardio = [doc for doc in docs if doc["context"] == CASE_CARDIO]
    assert len(cardio) == 5 and len({doc["cluster"] for doc in cardio}) == 1
    assert len({doc["cluster"] for doc in docs if doc["context"]}) == 2  # two clinical cases
    assert all(doc["cluster"] == "" for doc in docs if not doc["context"])  # each its own cluster
    assert {doc["question_type"] for doc in docs} == {"Reasoning", "Understanding"}
    assert {doc["specialty"] for doc in docs} == {"Cardiologie", "Pédiatrie", "Pharmacologie"}
    assert {doc["origin"] for doc in docs} == {"MediQAl"} and {doc["provenance"] for doc in docs} == {"native"}


def test_canonical_prompt_carries_case_question_and_options(mediqal_dir: Path) -> None:
    doc = load_dataset("mediqal", "mcqu", data_dir=str(mediqal_dir))["test"][0]
    assert doc["prompt_source"] == "canonical"  # MediQAl records have no conversation
    expected = f"Contexte : {CASE_CARDIO}\n\nQuestion : Quel examen demandez-vous en premier ?\n(A) Électro"
    assert expected in doc_to_text(doc)


def test_open_questions_keep_their_reference(mediqal_dir: Path) -> None:
    splits = load_dataset("mediqal", "oeq", data_dir=str(mediqal_dir))
    assert len(splits["validation"]) == 0  # MediQAl's OEQ config has a test split only
    assert splits["test"][0]["reference"] == "Un syndrome coronarien aigu."


def _write(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "mcqu" / "test.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"correct_answers": "la réponse A"}, "correct_answers", "unparseable answer"),
        ({"correct_answers": "a, b"}, "answer", "single-answer question with 2 gold letters"),
        ({"correct_answers": "f"}, "answer", "gold letter"),
        ({"question": ""}, "question", "empty question"),
        ({"answer_c": ""}, "options", "option C is empty"),
    ],
)
def test_bad_records_are_named_by_file_id_and_field(tmp_path: Path, change: dict, field: str, message: str) -> None:
    path = _write(tmp_path, [mcqu_records("test")[0] | change])
    with pytest.raises(RecordError, match=message) as raised:
        read_records(path, ReadOptions(task="mcqu"))
    assert (raised.value.source, raised.value.record_id, raised.value.field_name) == (str(path), "mcqu-test-1", field)


def test_a_multi_answer_record_in_the_single_answer_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, [mcqm_records("test")[0]])
    with pytest.raises(RecordError, match="mcqm-test-1.*single-answer question with 3 gold letters"):
        load_dataset("mediqal", "mcqu", data_dir=str(tmp_path))


def test_a_missing_test_file_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"no MediQAl test file for mcqm .*mcqm/test.json"):
        load_dataset("mediqal", "mcq", data_dir=str(tmp_path))
