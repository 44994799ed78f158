"""The ``medinj`` command, task discovery by lm-eval, and the wheel's task folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lm_eval_medinj.cli import lm_eval_argv, main
from lm_eval_medinj.paths import tasks_path

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    f"{name}{mode}"
    for mode in ("", "_greedy")
    for name in (
        "medinj", "medinj_mcq", "medinj_mcqu_native", "medinj_mcq_native", "medinj_mcqu_translated",
        "medinj_mcqu_all", "medinj_mcq_all", "medinj_frenchmedmcqa", "medinj_frenchmedmcqa_mcqu",
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
        "run", "--tasks", "medinj_mcq", "--limit", "3", "--include_path", include]
    assert lm_eval_argv(["ls", "tasks"]) == ["ls", "tasks", "--include_path", include]
    with pytest.raises(SystemExit, match="single --include_path"):
        lm_eval_argv(["--tasks", "x", "--include_path", "/mine"])


@pytest.mark.slow
def test_lm_eval_lists_every_task_and_group() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    listing = subprocess.run([str(BIN / "lm_eval"), "ls", "tasks", "--include_path", str(tasks_path())],
                             capture_output=True, text=True, env=env, timeout=600, check=True).stdout
    names = {cell.strip() for line in listing.splitlines() for cell in line.split("|")[1:2]}
    assert names >= EXPECTED, EXPECTED - names


@pytest.mark.slow
def test_wheel_ships_the_task_yaml(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                    str(REPO_ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("lm_eval_medinj-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lm_eval_medinj/tasks/medinj/medinj_mcq.yaml" in names
    assert "lm_eval_medinj/tasks/medinj/_base_yaml" in names
    assert "lm_eval_medinj/demo_data/Native/Test/mcq/mcq_test.json" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    printed = subprocess.run(
        [sys.executable, "-c", "from lm_eval_medinj.paths import tasks_path; print(tasks_path())"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)}, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(printed) == target / "lm_eval_medinj" / "tasks"
