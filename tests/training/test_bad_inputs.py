"""``train/sft.py`` on bad input: one line naming what is wrong, exit status 2, no traceback
(``lm_eval_medinj.cli.train.main`` in this process, as the script runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.cli.train import main as sft_cli
from tests.training.conftest import SMOKE_SETTINGS


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        sft_cli(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if ": error: " in line]  # the program name: pytest's here
    assert len(lines) == 1, err
    return lines[0].partition(": error: ")[2]


def _dry_run(pools_dir: Path, tmp_path: Path, *flags: str) -> list[str]:
    return ["--mixtures", "NAT", "--dry-run", "--data_dir", str(pools_dir), "--total", "30",
            "--output_dir", str(tmp_path / "runs"), *flags]  # fmt: skip


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "learning_rate: 1e-4\n  lora_r: [16\n",
            "not valid YAML (line 2, column 9: mapping values are not allowed here)",
        ),
        ("lora_r: [16\n", "not valid YAML (line 2, column 1: expected ',' or ']', but got '<stream end>')"),
        ("- learning_rate\n", "must hold a YAML mapping of flag names to values"),
        ("learning_rate: fast\n", "learning_rate: 'fast' is not valid (could not convert string to float: 'fast')"),
        ("lora_r: [16, 32]\n", "lora_r: expected one value, got [16, 32]"),
        ("bf16: maybe\n", "bf16: 'maybe' is not valid"),
        ("method: qlora\n", "method: 'qlora' is not one of dora, lora, full"),
        ("learning_rat: 0.1\n", "unknown settings: learning_rat"),
    ],
    ids=[
        "bad-indent",
        "unclosed-list",
        "not-a-mapping",
        "word-for-number",
        "list-for-number",
        "bad-bool",
        "bad-choice",
        "misspelt",
    ],  # fmt: skip
)
def test_a_malformed_settings_file_is_one_line_naming_it(
    tmp_path: Path, pools_dir: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, expected: str
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml_text, encoding="utf-8")
    line = _one_line(_dry_run(pools_dir, tmp_path, "--settings", str(settings)), capsys)
    assert line.startswith(f"settings file {settings}") and expected in line, line


def test_settings_values_are_read_as_their_flags_would_be(tmp_path: Path, pools_dir: Path) -> None:
    from lm_eval_medinj.training.settings import parse_args

    settings = tmp_path / "settings.yaml"
    settings.write_text("tasks: mcq\nlora_r: '8'\nbf16: 'false'\nlearning_rate: 2\n", encoding="utf-8")
    script, model, training = parse_args(["--settings", str(settings), "--output_dir", str(tmp_path)])
    assert (script.tasks, model.lora_r, training.bf16, training.learning_rate) == (["mcq"], 8, False, 2.0)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ("--learning_r", "0.1"),
            "unknown flag(s): --learning_r (did you mean --learning_rate?); flags are not abbreviated",
        ),
        (("--lora_r", "sixteen"), "argument --lora_r/--lora-r: invalid int value: 'sixteen'"),
        (("--method", "qlora"), "argument --method: invalid choice: 'qlora'"),
        (("--model_name_or_path", "/no/such/model"), "--model_name_or_path /no/such/model: no such folder"),
        (("--model_name_or_path", "./models/none"), "--model_name_or_path ./models/none: no such folder"),
    ],
    ids=["abbreviated", "word-for-int", "bad-choice", "absent-model", "absent-relative-model"],
)
def test_bad_flags_are_one_line(
    tmp_path: Path, pools_dir: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], expected: str
) -> None:
    line = _one_line(_dry_run(pools_dir, tmp_path, *flags), capsys)
    assert line.startswith(expected), line


def test_output_dir_naming_a_file_is_one_line(tmp_path: Path, pools_dir: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    argv = ["--mixtures", "NAT", "--dry-run", "--data_dir", str(pools_dir), "--output_dir", str(taken)]
    assert _one_line(argv, capsys) == f"--output_dir {taken}: a file, not a folder"


def test_a_model_that_cannot_be_loaded_is_one_line(tmp_path: Path, pools_dir: Path, capsys) -> None:
    """A Hub id that is not in the local cache, offline (the tests run with HF_HUB_OFFLINE=1)."""
    argv = ["--mixtures", "NAT", "--settings", str(SMOKE_SETTINGS), "--data_dir", str(pools_dir),
            "--output_dir", str(tmp_path / "runs"), "--eval_strategy", "no", "--report_to", "none",
            "--model_name_or_path", "medinj-tests/no-such-model"]  # fmt: skip
    line = _one_line(argv, capsys)
    assert line.startswith("--model_name_or_path medinj-tests/no-such-model: "), line
