"""The atomic writers every tool writes its outputs through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.errors import InputError
from lm_eval_medinj.files import write_json_atomic, write_text_atomic


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
