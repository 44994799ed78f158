"""``judge/score.py`` and ``judge/meta_eval.py`` print a data or usage error as one line (exit status 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.judge.items import read_items
from tests.judge.cli import run_script, script_main


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


def _one_line(main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a run that must stop with exit status 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    return line


def _jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


GOOD = {"question": "Q ?", "reference": "R.", "candidate": "C."}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            [GOOD, {**GOOD, "id": "q7", "question": ["Q ?", "bis"]}],
            "#1 (record 'q7'), field 'question': expected text, got list ['Q ?', 'bis']",
        ),
        ([{**GOOD, "reference": 3}], "#0, field 'reference': expected text, got int 3"),
        ([{**GOOD, "candidate": None}], "#0, field 'candidate': null"),
        (
            [{"messages": [{"role": "user", "content": [{"type": "text"}]}], "candidate": "C."}],
            "field 'messages[0].content': expected text, got list",
        ),
        ([], ": no items to judge (the file is empty)"),
    ],
    ids=["question-list", "reference-number", "candidate-null", "content-parts", "empty"],
)
def test_score_refuses_judge_inputs_it_would_have_to_guess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: list, expected: str
) -> None:
    items = _jsonl(tmp_path / "items.jsonl", *content)
    args = [str(items), "--judge", f"hf:{tmp_path / 'no-model'}", "--cache", str(tmp_path / "c.sqlite")]
    line = _one_line(script_main("score.py"), args, capsys)
    assert line.startswith(f"score.py: error: {items}") and expected in line, line
    assert not list(tmp_path.glob("judge_*"))


def test_judge_inputs_with_a_bom_are_read_and_other_bytes_than_utf8_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert [item.question for item in read_items(bom)] == ["Q ?"]
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(
        json.dumps({**GOOD, "question": "QUESTION"}).encode().replace(b"QUESTION", "é ?".encode("latin-1"))
    )
    args = [str(latin), "--judge", "hf:unused", "--cache", str(tmp_path / "c.sqlite")]
    assert (
        _one_line(script_main("score.py"), args, capsys)
        == f"score.py: error: {latin}: not UTF-8 text (byte 14: invalid continuation byte)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"judge": "hf:x"', "not a calibration file: invalid JSON (Expecting ',' delimiter, line 1)"),
        (
            '{"judge": "hf:x", "prompt": "paper@1", "method": "platt", "params": {"slope": 1}, "n": 3}',
            "not a calibration file: field 'params.intercept': Field required",
        ),
        (
            '{"judge": "hf:x", "prompt": "p", "method": "sigmoid", "params": {}, "n": 3}',
            "not a calibration file: field 'method': Input should be 'platt' or 'isotonic'",
        ),
    ],
    ids=["truncated", "missing-parameter", "unknown-method"],
)
def test_a_corrupt_calibration_is_one_line_before_the_judge_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    items, calibration = _jsonl(tmp_path / "items.jsonl", GOOD), tmp_path / "cal.json"
    calibration.write_text(content, encoding="utf-8")
    args = [str(items), "--judge", f"hf:{tmp_path / 'no-model'}", "--calibration", str(calibration)]
    assert _one_line(script_main("score.py"), [*args, "--cache", str(tmp_path / "c.sqlite")], capsys) == (
        f"score.py: error: {calibration}: {expected}"
    )


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        (
            "question,reference,candidate,rating\nQ ?,R.,C.,4\nQ2 ?,R.,C.,bon\n",
            "#1, field 'rating': the rating 'bon' is not a finite number",
        ),
        (
            "question,reference,candidate,rating\nQ ?,R.,C.,nan\n",
            "#0, field 'rating': the rating 'nan' is not a finite number",
        ),
        ("question,reference,candidate,rating\n", ": no rated items (the file is empty, or holds only a header)"),
        ("", ": no rated items (the file is empty, or holds only a header)"),
    ],
    ids=["word", "nan", "header-only", "empty"],
)
def test_meta_eval_refuses_ratings_that_are_not_numbers_or_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ratings: str, expected: str
) -> None:
    data = tmp_path / "ratings.csv"
    data.write_text(ratings, encoding="utf-8")
    args = ["--data", str(data), "--judge", "hf:unused", "--out", str(tmp_path / "out")]
    assert _one_line(script_main("meta_eval.py"), args, capsys) == f"meta_eval.py: error: {data}{expected}"


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    data = tmp_path / "ratings.csv"
    data.write_text("question,reference,candidate,rating\nQ ?,R.,C.,4\n", encoding="utf-8")
    meta = ["--data", str(data), "--judge", "hf:unused", "--out", str(taken)]
    assert (
        _one_line(script_main("meta_eval.py"), meta, capsys)
        == f"meta_eval.py: error: --out {taken}: a file, not a folder"
    )
    score = [str(_jsonl(tmp_path / "items.jsonl", GOOD)), "--judge", "hf:unused", "--output-dir", str(taken)]
    assert (
        _one_line(script_main("score.py"), score, capsys)
        == f"score.py: error: --output-dir {taken}: a file, not a folder"
    )
