"""Malformed data files, each injected for real: one error naming file, record and field; nothing guessed.

Every case writes the bad file into a benchmark's own layout and loads it as a task would
(``benchmark.load``), so the error is the one ``medinj eval`` prints as one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.benchmarks import benchmark_named
from lm_eval_medinj.benchmarks.layout import DataNotFoundError
from lm_eval_medinj.records import MAX_MCQ_OPTIONS, RecordError

NATIVE_MCQU = Path("Native/Test/mcqu/mcqu_test.json")


def hub_record(record_id: str = "q1", **overrides: Any) -> dict[str, Any]:
    record = {
        "id": record_id,
        "messages": [
            {"role": "user", "content": "Quel est l'antidote du paracétamol ?\n(A) Naloxone\n(B) NAC\n(C) Atropine"},
            {"role": "assistant", "content": "B"},
        ],
        "classes": ["A", "B", "C"],
        "answer": "B",
    }
    return record | overrides


def write(root: Path, relative: Path, content: bytes | str | list[Any]) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, list):
        content = json.dumps(content, ensure_ascii=False)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load_native_mcqu(root: Path) -> list:
    return benchmark_named("medinjection").load("mcqu", "test", root, provenances=["native"])


@pytest.mark.parametrize(
    ("content", "record", "field", "message"),
    [
        (b"", "<file>", "<records>", "empty file"),
        (b"  \n", "<file>", "<records>", "empty file"),
        (b"[]", "<file>", "<records>", "empty array"),
        (b'[{"id": "q1", "messages": [}', "<file>", "<record>", "invalid JSON"),
        ("[" * 100_000 + "]" * 100_000, "<file>", "<record>", "nested too deeply"),
        (b'[{"id": "q1", "question": "Qu\xe9 ?"}]', "<file>", "<encoding>", "not UTF-8 text (byte 29"),
        (b'["not an object"]', "#0", "<record>", "not a JSON object"),
        (b'{"id": 3.5}', "#0", "id", "expected a text or integer id"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes | str, record: str, field: str, message: str) -> None:
    path = write(tmp_path, NATIVE_MCQU, content)
    with pytest.raises(RecordError) as raised:
        load_native_mcqu(tmp_path)
    assert (raised.value.source, raised.value.record_id, raised.value.field_name) == (str(path), record, field)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"classes": ["La naloxone", None]}, "classes", "option B: expected text, got NoneType"),
        ({"classes": {"A": "un", "B": 2}}, "classes", "option B: expected text, got int"),
        ({"context": ["une", "liste"]}, "context", "expected text, got list"),
        ({"origin": "MedQA"}, "origin", "'MedQA' is translated data, but the record is in the native subset's folder"),
        ({"provenance": "synthetic"}, "provenance", "is synthetic data"),
        ({"answer": {"letter": "B"}}, "answer", "unparseable answer"),
    ],
)
def test_invalid_fields_are_refused_not_guessed(tmp_path: Path, overrides: dict, field: str, message: str) -> None:
    path = write(tmp_path, NATIVE_MCQU, [hub_record("ok"), hub_record("bad-1", **overrides)])
    with pytest.raises(RecordError) as raised:
        load_native_mcqu(tmp_path)
    assert (raised.value.source, raised.value.record_id, raised.value.field_name) == (str(path), "bad-1", field)
    assert message in str(raised.value)


def test_too_many_options_is_one_line_not_an_exhausted_memory(tmp_path: Path) -> None:
    letters = [chr(ord("A") + i) for i in range(24)]
    user = "Cochez les vraies :\n" + "\n".join(f"({letter}) option {letter}" for letter in letters)
    record = hub_record("many", messages=[{"role": "user", "content": user}], classes=letters, answer="A, C")
    path = write(tmp_path, Path("Native/Test/mcq/mcq_test.json"), [record])
    with pytest.raises(RecordError, match=f"24 options; a mcq question may have at most {MAX_MCQ_OPTIONS}") as raised:
        benchmark_named("medinjection").load("mcq", "test", tmp_path, provenances=["native"])
    assert (raised.value.source, raised.value.record_id, raised.value.field_name) == (str(path), "many", "options")


def test_a_question_line_that_looks_like_an_option_stays_in_the_question(tmp_path: Path) -> None:
    user = "A. Fleming a découvert quel antibiotique ?\nA. La pénicilline\nB. La streptomycine\nC. La vancomycine"
    record = hub_record("fleming", messages=[{"role": "user", "content": user}], answer="A")
    write(tmp_path, NATIVE_MCQU, [record])
    (loaded,) = load_native_mcqu(tmp_path)
    assert loaded.question == "A. Fleming a découvert quel antibiotique ?"
    assert loaded.options == {"A": "La pénicilline", "B": "La streptomycine", "C": "La vancomycine"}


def test_a_byte_order_mark_and_a_large_record_still_read(tmp_path: Path) -> None:
    long_question = "Un patient de 60 ans consulte. " * 170_000  # a 5 MB record
    user = f"{long_question}\n(A) Naloxone\n(B) NAC"
    records = [hub_record("big", messages=[{"role": "user", "content": user}], classes=["A", "B"])]
    write(tmp_path, NATIVE_MCQU, "\ufeff" + json.dumps(records, ensure_ascii=False))
    (loaded,) = load_native_mcqu(tmp_path)
    assert len(loaded.question) > 5_000_000 and loaded.gold == ("B",)


def test_frenchmedmcqa_reads_only_its_own_test_file(tmp_path: Path, frenchmedmcqa_dir: Path) -> None:
    shutil.copy(frenchmedmcqa_dir / "test.json", tmp_path / "test.json")
    other = tmp_path / "another-benchmark" / "test.json"
    other.parent.mkdir()
    other.write_text(json.dumps([hub_record()]), encoding="utf-8")
    assert len(benchmark_named("frenchmedmcqa").load("mcqu", "test", tmp_path)) == 321
    (tmp_path / "test.json").unlink()
    with pytest.raises(DataNotFoundError, match=r"no FrenchMedMCQA test\.json .*found deeper: .*another-benchmark"):
        benchmark_named("frenchmedmcqa").load("mcqu", "test", tmp_path)


def test_two_subset_folders_differing_by_case_are_refused(tmp_path: Path) -> None:
    write(tmp_path, NATIVE_MCQU, [hub_record()])
    write(tmp_path, Path("native/Test/mcqu/mcqu_test.json"), [hub_record()])
    with pytest.raises(DataNotFoundError, match="2 folders named 'Native' up to case"):
        load_native_mcqu(tmp_path)


def test_every_record_carries_where_it_was_read(tmp_path: Path) -> None:
    write(tmp_path, NATIVE_MCQU, [hub_record("q1"), hub_record("q2")])
    first, second = load_native_mcqu(tmp_path)
    assert (first.benchmark, first.config, first.uid) == ("medinjection", "native-mcqu", "medinjection/native-mcqu/q1")
    assert first.data_revision.startswith("sha256:") and first.data_revision == second.data_revision
    write(tmp_path, NATIVE_MCQU, [hub_record("q1"), hub_record("q2", answer="C")])
    assert load_native_mcqu(tmp_path)[0].data_revision != first.data_revision, "other bytes, other revision"


def test_a_single_file_given_as_data_dir_is_the_test_split(tmp_path: Path) -> None:
    """The one place a record's shape is recognised: a file a user gives on its own."""
    path = write(tmp_path, Path("mine.json"), [hub_record("q1", origin="MediQAl"), hub_record("q2", origin="MedQA")])
    medinjection = benchmark_named("medinjection")
    (native,) = medinjection.load("mcqu", "test", path, provenances=["native"])
    assert (native.id, native.provenance, native.uid) == ("q1", "native", "medinjection/native-mcqu/q1")
    assert [r.id for r in medinjection.load("mcqu", "test", path, provenances=["translated"])] == ["q2"]
    assert medinjection.load("mcqu", "validation", path, provenances=["native"]) == []
