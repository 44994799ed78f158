"""``judge/score.py`` and ``judge/meta_eval.py`` print a data or usage error as one line (exit status 2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.judge.cli import run_script


def test_score_on_a_malformed_input_is_one_line_before_loading_the_judge(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    good = {"question": "Q ?", "reference": "R.", "candidate": "C."}
    items.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    # the judge does not exist: the input is checked before any judge is loaded
    args = (items, "--judge", f"hf:{tmp_path / 'no-model'}", "--cache", tmp_path / "cache.sqlite", "--no-progress")
    done = run_script("score.py", *args, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("score.py: error: ") and f"{items}:2: invalid JSON" in line
    debug = run_script("score.py", *args, "--debug", timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "InputError" in debug.stderr


def test_meta_eval_on_ratings_without_a_rating_column_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "ratings.csv"
    data.write_text("question,reference,candidate\nQ ?,R.,C.\n", encoding="utf-8")
    done = run_script("meta_eval.py", "--data", data, "--judge", "hf:unused", "--out", tmp_path / "out", timeout=120)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == f"meta_eval.py: error: {data}#0: no rating column (one of rating, human, human_rating, label, score)"
