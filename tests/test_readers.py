"""Readers: every record shape, and every validation error named by file, record and field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lm_eval_medinj.benchmarks.fields import split_options
from lm_eval_medinj.benchmarks.single_file import ReadOptions, read_records
from lm_eval_medinj.prompts import render_prompt
from lm_eval_medinj.records import MedRecord, RecordError

USER = "Quel est l'antidote du paracétamol ?\n(A) La naloxone\n(B) La N-acétylcystéine\n(C) L'atropine"


def hub_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "id": "q1",
        "messages": [
            {"role": "system", "content": "Tu es un assistant médical."},
            {"role": "user", "content": USER},
            {"role": "assistant", "content": "B"},
        ],
        "classes": ["A", "B", "C"],
        "answer": "B",
    }
    record.update(overrides)
    return record


def write_json(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def read_one(tmp_path: Path, record: dict[str, Any], **options: Any) -> MedRecord:
    path = write_json(tmp_path / "data.json", [record])
    return read_records(path, ReadOptions(provenance="native", **options)).records[0]


# --------------------------------------------------------------------------- shapes


def test_hub_record_options_parsed_from_user_message(tmp_path: Path) -> None:
    record = read_one(tmp_path, hub_record(), task="mcqu")
    assert record.question == "Quel est l'antidote du paracétamol ?"
    assert record.options == {"A": "La naloxone", "B": "La N-acétylcystéine", "C": "L'atropine"}
    assert record.gold == ("B",)
    assert (record.task, record.provenance) == ("mcqu", "native")


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("A, C", ("A", "C")),
        ("C,A", ("A", "C")),
        (["C", "A"], ("A", "C")),
        ([0, 2], ("A", "C")),
        ("(b)", ("B",)),
        ("B) La N-acétylcystéine", ("B",)),
        ("La N-acétylcystéine", ("B",)),
    ],
)
def test_hub_answer_forms(tmp_path: Path, answer: Any, gold: tuple[str, ...]) -> None:
    assert read_one(tmp_path, hub_record(answer=answer)).gold == gold


def test_hub_task_inferred_from_gold_count_without_folder(tmp_path: Path) -> None:
    assert read_one(tmp_path, hub_record(answer="A, C")).task == "mcq"
    assert read_one(tmp_path, hub_record(answer="A")).task == "mcqu"


def test_hub_classes_as_option_texts(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Quel organe filtre le sang ?"}]
    record = read_one(tmp_path, hub_record(messages=messages, classes=["Le rein", "Le cœur"], answer="A"))
    assert record.options == {"A": "Le rein", "B": "Le cœur"}
    assert record.question == "Quel organe filtre le sang ?"


def test_hub_answer_falls_back_to_assistant_message(tmp_path: Path) -> None:
    raw = hub_record()
    del raw["answer"]
    assert read_one(tmp_path, raw).gold == ("B",)


def test_hub_open_question(tmp_path: Path) -> None:
    raw = {
        "id": "o1",
        "messages": [
            {"role": "user", "content": "Définir la fièvre."},
            {"role": "assistant", "content": "Température > 38 °C."},
        ],
        "answer": "Température > 38 °C.",
    }
    record = read_one(tmp_path, raw, task="oeq")
    assert (record.task, record.reference, record.options) == ("oeq", "Température > 38 °C.", {})


def test_all_parquet_rows(tmp_path: Path) -> None:
    rows = [
        {
            "instruction": "Quel antidote ?\n(A) Naloxone\n(B) NAC",
            "context": "",
            "answer": "B",
            "type": "QCU",
            "origin": "MedQA",
        },
        {
            "instruction": "Cochez les vraies.",
            "context": "(A) Vrai un\n(B) Faux\n(C) Vrai deux",
            "answer": "A, C",
            "type": "mcq",
            "origin": "native",
        },
        {
            "instruction": "Définir l'anémie.",
            "context": "",
            "answer": "Baisse de l'hémoglobine.",
            "type": "QRO",
            "origin": "synthetic",
        },
    ]
    path = tmp_path / "test-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    records = read_records(path).records
    assert [(r.task, r.provenance) for r in records] == [
        ("mcqu", "translated"),
        ("mcq", "native"),
        ("oeq", "synthetic"),
    ]
    assert records[1].options == {"A": "Vrai un", "B": "Faux", "C": "Vrai deux"}
    assert records[1].gold == ("A", "C")
    assert records[0].id == "test-00000#0"


def test_frenchmedmcqa_record(tmp_path: Path) -> None:
    raw = {
        "id": "f1",
        "question": "Parmi les propositions suivantes, lesquelles sont exactes ?",
        "answers": {"a": "un", "b": "deux", "c": "trois", "d": "quatre", "e": "cinq"},
        "correct_answers": ["e", "a"],
        "subject_name": "pharmacie",
        "nbr_correct_answers": 2,
    }
    record = read_one(tmp_path, raw)
    assert (record.task, record.gold, record.origin, record.specialty) == (
        "mcq",
        ("A", "E"),
        "FrenchMedMCQA",
        "pharmacie",
    )
    assert list(record.options) == ["A", "B", "C", "D", "E"]


def test_canonical_shape_round_trips_through_jsonl(tmp_path: Path) -> None:
    original = MedRecord(
        "c1",
        "translated",
        "MedMCQA",
        "mcq",
        "Q ?",
        {"A": "x", "B": "y", "C": "z"},
        ("A", "C"),
        context="Contexte",
        specialty="cardiologie",
    )
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(original.to_doc()) + "\n", encoding="utf-8")
    assert read_records(path).records == [original]
    assert MedRecord.from_doc(original.to_doc()) == original


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text("\n".join(json.dumps(hub_record(id=f"q{i}")) for i in range(3)), encoding="utf-8")
    assert [r.id for r in read_records(path, ReadOptions(provenance="native")).records] == ["q0", "q1", "q2"]


def test_real_frenchmedmcqa_test_split(frenchmedmcqa_dir: Path) -> None:
    records = read_records(frenchmedmcqa_dir / "test.json").records
    assert len(records) == 622
    assert sum(r.task == "mcqu" for r in records) == 321
    assert sum(r.task == "mcq" for r in records) == 301


def test_split_options_requires_consecutive_letters() -> None:
    question, options = split_options("Texte\n(A) un\n(C) trois\n(B) deux")
    assert options == {"A": "un", "B": "deux"}
    assert question == "Texte\n(C) trois"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"answer": "D"}, "answer", "not among options"),
        ({"answer": "A, B"}, "answer", "single-answer question with 2 gold letters"),
        ({"answer": "peut-être"}, "answer", "unparseable answer"),
        ({"answer": ""}, "answer", "unparseable answer"),
        ({"classes": ["A", "B", "F"]}, "classes", "not found"),
        (
            {"messages": [{"role": "user", "content": "\n(A) un\n(B) deux"}], "classes": ["A", "B"]},
            "question",
            "empty question",
        ),
        (
            {"messages": [{"role": "user", "content": "Q ?\n(A) seul"}], "classes": ["seul"], "answer": "A"},
            "options",
            "at least 2",
        ),
        ({"messages": "texte"}, "messages", "list of {role, content}"),
    ],
)
def test_invalid_hub_record_names_file_record_and_field(
    tmp_path: Path, overrides: dict[str, Any], field: str, message: str
) -> None:
    path = write_json(tmp_path / "bad.json", [hub_record(id="good"), hub_record(id="bad-7", **overrides)])
    with pytest.raises(RecordError) as error:
        read_records(path, ReadOptions(provenance="native", task="mcqu"))
    assert (error.value.source, error.value.record_id, error.value.field_name) == (str(path), "bad-7", field)
    assert message in str(error.value)
    assert str(path) in str(error.value) and "bad-7" in str(error.value)


def test_hub_record_keeps_its_conversation(tmp_path: Path) -> None:
    record = read_one(tmp_path, hub_record())
    assert [turn["role"] for turn in record.messages] == ["system", "user", "assistant"]
    assert record.prompt_turns == [record.messages[0], record.messages[1]]
    assert MedRecord.from_doc(record.to_doc()) == record


def test_options_the_readers_cannot_parse_are_named_by_classes(tmp_path: Path) -> None:
    user = "Quel est l'antidote du paracétamol ?\nA - La naloxone\nB - La N-acétylcystéine\nC - L'atropine"
    raw = hub_record(messages=[{"role": "user", "content": user}, {"role": "assistant", "content": "B"}])
    record = read_one(tmp_path, raw)
    assert record.options == {"A": "", "B": "", "C": ""} and record.gold == ("B",)
    assert record.prompt_turns == [{"role": "user", "content": user}]
    with pytest.raises(ValueError, match=r"record 'q1', field 'options': the canonical prompt needs option texts"):
        render_prompt(record)


def test_all_parquet_row_becomes_a_user_turn(tmp_path: Path) -> None:
    path = tmp_path / "test-00000.parquet"
    row = {"id": "p1", "instruction": USER, "context": "Patient de 40 ans.", "answer": "B", "type": "mcqu",
           "origin": "MedQA"}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([row]), path)
    (record,) = read_records(path).records
    assert record.messages == ({"role": "user", "content": USER + "\n\nPatient de 40 ans."},
                               {"role": "assistant", "content": "B"})  # fmt: skip


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    first = write_json(tmp_path / "a.json", [hub_record(id="same")])
    second = write_json(tmp_path / "b.json", [hub_record(id="same")])
    duplicate = r"b\.json: record 'same', field 'id': duplicate id \(first seen in .*a\.json"
    with pytest.raises(RecordError, match=duplicate):
        read_records([first, second], ReadOptions(provenance="native"))


def test_unknown_shape(tmp_path: Path) -> None:
    path = write_json(tmp_path / "odd.json", [{"id": "x1", "prompt": "?", "label": 1}])
    unknown = r"record 'x1', field '<record>': unknown record shape \(keys: id, label, prompt\)"
    with pytest.raises(RecordError, match=unknown):
        read_records(path)


def test_unknown_provenance(tmp_path: Path) -> None:
    path = write_json(tmp_path / "p.json", [hub_record(origin="SomeCorpus")])
    with pytest.raises(RecordError, match="field 'origin': cannot tell the provenance"):
        read_records(path)


def test_open_question_with_empty_reference(tmp_path: Path) -> None:
    raw = {"id": "o2", "messages": [{"role": "user", "content": "Définir la fièvre."}], "answer": "  "}
    path = write_json(tmp_path / "oeq.json", [raw])
    with pytest.raises(RecordError, match="record 'o2', field 'answer': open question with an empty reference"):
        read_records(path, ReadOptions(provenance="native", task="oeq"))


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(hub_record()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken\.jsonl: record 'line 2', field '<record>': invalid JSON"):
        read_records(path, ReadOptions(provenance="native"))


def test_skip_invalid_drops_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_json(
        tmp_path / "mixed.json",
        [
            hub_record(id="ok1"),
            hub_record(id="bad1", answer="Z"),
            hub_record(id="ok2"),
            hub_record(id="bad2", answer="?"),
        ],
    )
    with caplog.at_level(logging.WARNING):
        report = read_records(path, ReadOptions(provenance="native", skip_invalid=True))
    assert [r.id for r in report.records] == ["ok1", "ok2"]
    assert [e.record_id for e in report.skipped] == ["bad1", "bad2"]
    assert "skipped 2 invalid record(s) of 4" in caplog.text and "bad1" in caplog.text
