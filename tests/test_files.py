"""The atomic writers every tool writes its outputs through."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.errors import InputError
from lm_eval_medinj.files import read_json, read_jsonl, read_text, write_json_atomic, write_text_atomic


def test_a_file_is_written_whole_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "report.md"
    write_text_atomic(path, "première\n")
    write_json_atomic(tmp_path / "new" / "report.json", {"modèle": 1})
    assert path.read_text(encoding="utf-8") == "première\n"
    assert json.loads((tmp_path / "new" / "report.json").read_text(encoding="utf-8")) == {"modèle": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json", "report.md"]


def test_a_folder_in_place_of_the_file_is_refused_and_nothing_written(tmp_path: Path) -> None:
    folder = tmp_path / "agreement.json"
    folder.mkdir()
    with pytest.raises(InputError, match=rf"^{folder}: is a folder"):
        write_json_atomic(folder, {"a": 1})
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())


@pytest.mark.parametrize(
    ("content", "reader", "message"),
    [
        (b'{"a": 1}\n{"b": ', read_jsonl, ":2: invalid JSON"),
        (b'{"a": 1}\n\n[1]\n', read_jsonl, ":3: expected a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, read_jsonl, ":1: invalid JSON (nested too deeply)"),
        (b'{\n  "a": \n', read_json, ":3: invalid JSON"),
        (b"[1, 2]", read_json, ": expected a JSON object, got list"),
        (b'{"mod\xe8le": 1}', read_json, ": not UTF-8 text (byte 5"),
    ],
)
def test_a_bad_input_file_is_one_error_naming_it_and_the_line(
    tmp_path: Path, content: bytes, reader: Callable[[Path], Any], message: str
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="^" + re.escape(f"{path}{message}")):
        reader(path)


def test_a_byte_order_mark_is_read_past_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "q1"}\n\n{"id": "q\xc3\xa9"}\n')
    assert read_jsonl(path) == [{"id": "q1"}, {"id": "qé"}]
    with pytest.raises(InputError, match=rf"^{tmp_path}: a folder, not a file"):
        read_text(tmp_path)
