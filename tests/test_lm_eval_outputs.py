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
        (b'{"doc": "\xff"}', r"not UTF-8 text \(byte 9\)"),
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
