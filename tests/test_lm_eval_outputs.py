"""lm-eval output files that are truncated, empty or not text: one error naming the file (and line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.lm_eval_outputs import OutputError, read_json, read_jsonl


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file, no rows"),
        (b'{"doc": {"id": "q1"}, "em": 1.0}\n{"doc": {"id": "q2"}, "e', ":2: invalid JSON"),
        (b'{"doc": 1}\n[1, 2]\n', ":2: expected a JSON object"),
        (b'{"doc": "\xff"}', r"not UTF-8 text \(byte 9: invalid start byte\)"),
    ],
)
def test_bad_samples_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "samples_medinj_mcqu_all_2026-01-01T00-00-00.jsonl"
    path.write_bytes(content)
    with pytest.raises(OutputError, match=message) as raised:
        read_jsonl(path)
    assert str(raised.value).startswith(str(path))


@pytest.mark.parametrize(("content", "message"), [(b'{"results": {"medinj', "a truncated file"), (b"[]", "got list")])
def test_bad_results_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "results_2026-01-01T00-00-00.json"
    path.write_bytes(content)
    with pytest.raises(OutputError, match=message):
        read_json(path)


def test_two_runs_below_one_folder_are_refused_not_mixed(tmp_path: Path) -> None:
    from lm_eval_medinj.lm_eval_outputs import newest_samples

    for model, date in (("model-a", "2026-01-01T00-00-00"), ("model-b", "2026-01-02T00-00-00")):
        (tmp_path / model).mkdir()
        (tmp_path / model / f"samples_medinj_mcqu_all_{date}.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(OutputError, match="task medinj_mcqu_all has samples in .*model-b and .*model-a: several runs"):
        newest_samples(tmp_path)
    only = newest_samples(tmp_path / "model-a")
    assert list(only) == ["medinj_mcqu_all"]
    (tmp_path / "model-a" / "samples_medinj_mcqu_all_2026-01-03T00-00-00.jsonl").write_text("{}\n", encoding="utf-8")
    assert newest_samples(tmp_path / "model-a")["medinj_mcqu_all"].name.endswith("2026-01-03T00-00-00.jsonl")
    (tmp_path / "model-b" / "samples_medinj_mcqu_all_gen_2026-01-02T00-00-00.jsonl").write_text("{}\n")
    assert set(newest_samples(tmp_path / "model-b")) == {"medinj_mcqu_all", "medinj_mcqu_all_gen"}, (
        "a prefix is no task"
    )
