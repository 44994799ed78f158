"""Source resolution: Hub layout folders, ALL parquet, single files, the environment variable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lm_eval_medinj.benchmarks.frenchmedmcqa import load as load_frenchmedmcqa
from lm_eval_medinj.benchmarks.layout import DATA_DIR_ENV, DataNotFoundError, resolve_data_dir
from lm_eval_medinj.benchmarks.medinjection import load_subset as load_medinjection
from lm_eval_medinj.records import RecordError


def test_demo_data_in_hub_layout(demo_data_dir: Path) -> None:
    assert len(load_medinjection("native", "mcqu", "test", demo_data_dir)) == 24
    assert len(load_medinjection("native", "mcq", "test", demo_data_dir)) == 24
    translated = load_medinjection("translated", "mcqu", "test", demo_data_dir)
    assert len(translated) == 12 and {r.provenance for r in translated} == {"translated"}
    assert len(load_medinjection("native", "mcqu", "validation", demo_data_dir)) == 4


def test_missing_subset_is_a_clear_error(tmp_path: Path, demo_data_dir: Path) -> None:
    shutil.copytree(demo_data_dir / "Native", tmp_path / "native")  # folder names match case-insensitively
    assert len(load_medinjection("native", "mcq", "test", tmp_path)) == 24
    with pytest.raises(DataNotFoundError, match=r"no translated test files for task mcqu in .*Translated/Test/mcqu"):
        load_medinjection("translated", "mcqu", "test", tmp_path)
    assert load_medinjection("native", "mcq", "train", tmp_path) == []  # non-test splits may be absent


def test_all_parquet_split_and_filtered(tmp_path: Path) -> None:
    row = {"instruction": "Q ?\n(A) a\n(B) b", "context": "", "answer": "A", "type": "mcqu"}
    pq.write_table(
        pa.Table.from_pylist(
            [
                {**row, "origin": "native"},
                {**row, "origin": "MedMCQA"},
                {**row, "type": "mcq", "answer": "A, B", "origin": "native"},
            ]
        ),
        tmp_path / "test-00000-of-00001.parquet",
    )
    pq.write_table(pa.Table.from_pylist([{**row, "origin": "native"}]), tmp_path / "validation-00000-of-00001.parquet")
    assert [r.origin for r in load_medinjection("native", "mcqu", "test", tmp_path)] == ["native"]
    assert [r.origin for r in load_medinjection("translated", "mcqu", "test", tmp_path)] == ["MedMCQA"]
    assert len(load_medinjection("native", "mcq", "test", tmp_path)) == 1
    assert len(load_medinjection("native", "mcqu", "validation", tmp_path)) == 1


def test_frenchmedmcqa_splits_by_answer_count(frenchmedmcqa_dir: Path) -> None:
    assert len(load_frenchmedmcqa("mcqu", "test", frenchmedmcqa_dir)) == 321
    assert len(load_frenchmedmcqa("mcq", "test", frenchmedmcqa_dir)) == 301
    assert len(load_frenchmedmcqa("mcqu", "validation", frenchmedmcqa_dir)) == 164


def test_single_file_is_the_test_split(frenchmedmcqa_dir: Path) -> None:
    file = frenchmedmcqa_dir / "dev.json"
    assert len(load_frenchmedmcqa("mcq", "test", file)) == 148
    assert load_frenchmedmcqa("mcq", "validation", file) == []


def test_environment_variable_and_missing_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    with pytest.raises(DataNotFoundError, match="does not exist"):
        resolve_data_dir(str(tmp_path / "absent"))


def test_offline_hub_failure_says_how_to_use_local_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataNotFoundError, match=r"(?s)could not download dataset MedInjection-FR/Native .*data_dir"):
        load_medinjection("native", "mcqu", "test", None)


def test_invalid_record_in_a_folder(tmp_path: Path, demo_data_dir: Path) -> None:
    folder = tmp_path / "Native" / "Test" / "mcqu"
    folder.mkdir(parents=True)
    text = (demo_data_dir / "Native/Test/mcqu/mcqu_test.json").read_text(encoding="utf-8")
    (folder / "mcqu_test.json").write_text(text.replace('"answer": "B"', '"answer": "Z"', 1), encoding="utf-8")
    with pytest.raises(RecordError, match=r"mcqu_test\.json: record 'demo-native-mcqu-test-\d+', field 'answer'"):
        load_medinjection("native", "mcqu", "test", tmp_path)
    assert len(load_medinjection("native", "mcqu", "test", tmp_path, skip_invalid=True)) == 23
