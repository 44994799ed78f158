"""The ``medinj`` command, task discovery by lm-eval, and the wheel's task folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lm_eval_medinj.cli import main
from lm_eval_medinj.cli.eval import lm_eval_argv
from lm_eval_medinj.paths import tasks_path

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    f"{name}{mode}"
    for mode in ("", "_greedy")
    for name in (
        "medinj",
        "medinj_mcq",
        "medinj_mcqu_native",
        "medinj_mcq_native",
        "medinj_mcqu_translated",
        "medinj_mcqu_all",
        "medinj_mcq_all",
        "medinj_frenchmedmcqa",
        "medinj_frenchmedmcqa_mcqu",
        "medinj_frenchmedmcqa_mcq",
    )
}


def test_tasks_path_prints_the_yaml_folder(capsys: pytest.CaptureFixture[str]) -> None:
    main(["tasks-path"])
    folder = Path(capsys.readouterr().out.strip())
    assert folder == tasks_path() and (folder / "medinj" / "medinj_mcq.yaml").is_file()


def test_eval_arguments_pass_through_with_include_path() -> None:
    include = str(tasks_path())
    assert lm_eval_argv(["--tasks", "medinj_mcq", "--limit", "3"]) == [
        "run",
        "--tasks",
        "medinj_mcq",
        "--limit",
        "3",
        "--include_path",
        include,
    ]
    assert lm_eval_argv(["ls", "tasks"]) == ["ls", "tasks", "--include_path", include]
    with pytest.raises(SystemExit, match="single --include_path"):
        lm_eval_argv(["--tasks", "x", "--include_path", "/mine"])


@pytest.mark.slow
def test_lm_eval_lists_every_task_and_group() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    listing = subprocess.run(
        [str(BIN / "lm_eval"), "ls", "tasks", "--include_path", str(tasks_path())],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    ).stdout
    names = {cell.strip() for line in listing.splitlines() for cell in line.split("|")[1:2]}
    assert names >= EXPECTED, EXPECTED - names


@pytest.mark.slow
def test_wheel_ships_the_task_yaml(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("lm_eval_medinj-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lm_eval_medinj/tasks/medinj/medinj_mcq.yaml" in names
    assert "lm_eval_medinj/tasks/medinj/_base_yaml" in names
    assert "lm_eval_medinj/demo_data/Native/Test/mcq/mcq_test.json" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    printed = subprocess.run(
        [sys.executable, "-c", "from lm_eval_medinj.paths import tasks_path; print(tasks_path())"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(printed) == target / "lm_eval_medinj" / "tasks"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["breakdown", "{missing}"], r"no samples_\*\.jsonl below {missing}"),
        (["report", "--model", "{missing}", "--baseline", "x", "--out", "{out}"], "{missing} is not a folder"),
    ],
)
def test_report_and_breakdown_on_a_missing_folder_print_one_line(
    command: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if command[0] == "report":
        pytest.importorskip("scipy")
    missing = tmp_path / "missing"
    argv = [arg.format(missing=missing, out=tmp_path / "out") for arg in command]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"medinj {command[0]}: error: ")
    assert re.search(message.format(missing=re.escape(str(missing))), line), line
    with pytest.raises(ValueError, match=message.format(missing=re.escape(str(missing)))):  # with its traceback
        main([*argv, "--debug"])


def test_eval_prints_a_duplicate_record_id_as_one_line(
    tiny_model_dir: Path, demo_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # medinj eval sets it for lm-eval
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"
    shutil.copytree(demo_data_dir, data)
    path = data / "Native" / "Test" / "mcq" / "mcq_test.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps([*records, records[0]], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        main(["eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--device", "cpu",
              "--tasks", "medinj_mcq_native", "--metadata", json.dumps({"data_dir": str(data)}),
              "--limit", "1"])  # fmt: skip
    assert stopped.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("medinj eval: error: ") and str(path) in last and records[0]["id"] in last
    assert "duplicate id" in last


def test_debug_before_the_command_keeps_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no samples_"):
        main(["--debug", "breakdown", str(tmp_path)])


def test_report_checks_its_flags_and_files_before_reading_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("scipy")
    base = ["report", "--model", f"x={tmp_path / 'no-run'}", "--baseline", "x", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stopped:
        main([*base, "--bootstrap", "0"])
    assert stopped.value.code == 2 and "at least 100 resamples, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main([*base, "--human", str(tmp_path / "no-annotations")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and "no-annotations" in line and "no-run" not in line
