"""The task YAML files are what lm_eval_medinj/tasks/_generate_configs.py writes; every task and group name stays."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from lm_eval.tasks._index import Kind, TaskIndex
from lm_eval.tasks._yaml_loader import load_yaml

from lm_eval_medinj.paths import tasks_path

TASKS = tasks_path()

# Every task and group name before the YAML files were generated: they must all keep working.
EXPECTED_GROUPS = {
    f"{name}{mode}"
    for mode in ("", "_gen", "_greedy")
    for name in ("medinj", "medinj_mcq", "medinj_frenchmedmcqa", "medinj_mediqal")
} | {"medinj_oeq"}
EXPECTED_TASKS = {
    f"{name}{mode}"
    for mode in ("", "_gen", "_greedy")
    for name in (
        "medinj_mcq_native",
        "medinj_mcq_all",
        "medinj_mcqu_native",
        "medinj_mcqu_translated",
        "medinj_mcqu_all",
        "medinj_frenchmedmcqa_mcqu",
        "medinj_frenchmedmcqa_mcq",
        "medinj_mediqal_mcqu",
        "medinj_mediqal_mcqm",
    )
} | {"medinj_oeq_native", "medinj_mediqal_oeq"}


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("medinj_generate_configs", TASKS / "_generate_configs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def index() -> dict:
    return TaskIndex.build([TASKS])


def test_committed_yaml_is_what_the_generator_writes(generator) -> None:
    assert generator.differences(generator.generate()) == [], "run: python lm_eval_medinj/tasks/_generate_configs.py"
    assert generator.main(["--check"]) == 0


def test_check_names_an_edited_and_a_stray_file(
    generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    assert generator.main([]) == 0
    for name in generator.HANDWRITTEN:
        (tmp_path / name).write_text("task: x\n")
    assert generator.main(["--check"]) == 0
    edited = tmp_path / "medinj" / "medinj_mcq.yaml"
    edited.write_text(edited.read_text() + "# by hand\n")
    (tmp_path / "medinj" / "medinj_extra.yaml").write_text("task: medinj_extra\n")
    capsys.readouterr()
    assert generator.main(["--check"]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "tasks/medinj/medinj_mcq.yaml",
        "tasks/medinj/medinj_extra.yaml (not from the table: add a row, or remove the file)",
    ]
    stale = tmp_path / "medinj" / "medinj_dropped.yaml"
    stale.write_text(generator.HEADER + "task: medinj_dropped\n")
    assert generator.main([]) == 0
    assert not stale.exists() and (tmp_path / "medinj" / "medinj_extra.yaml").exists()
    assert edited.read_text() == generator.generate()["medinj/medinj_mcq.yaml"]


def test_every_task_and_group_name_of_before_is_there(index: dict) -> None:
    groups = {name for name, entry in index.items() if entry.kind is Kind.GROUP}
    tasks = {name for name, entry in index.items() if entry.kind in (Kind.TASK, Kind.PY_TASK)}
    assert groups == EXPECTED_GROUPS
    assert tasks == EXPECTED_TASKS
    assert tasks_path() == TASKS


def test_every_group_member_exists(index: dict) -> None:
    for name in EXPECTED_GROUPS:
        members = load_yaml(index[name].yaml_path, resolve_func=False)["task"]
        assert members and set(members) <= EXPECTED_TASKS | EXPECTED_GROUPS, name


@pytest.mark.parametrize("mode", ["", "_gen", "_greedy"])
def test_the_all_alias_is_the_native_task_under_another_name(index: dict, mode: str) -> None:
    native, alias = (load_yaml(index[f"medinj_mcq_{p}{mode}"].yaml_path, resolve_func=True) for p in ("native", "all"))
    assert alias.pop("task") == f"medinj_mcq_all{mode}" and native.pop("task") == f"medinj_mcq_native{mode}"
    assert alias == native
    assert native["dataset_kwargs"] == {"benchmark": "medinjection", "task": "mcq", "provenances": ["native"]}


@pytest.mark.parametrize(
    ("name", "cls", "output_type", "metrics"),
    [
        ("medinj_mcqu_all", "MedinjTask", "multiple_choice", ["em"]),
        ("medinj_mediqal_mcqm_gen", "ConstrainedGenerationTask", "generate_until", ["em", "hamming"]),
        ("medinj_frenchmedmcqa_mcq_greedy", "MedinjTask", "generate_until", ["em", "hamming"]),
    ],
)
def test_a_leaf_joins_its_mode_and_format_templates(
    index: dict, name: str, cls: str, output_type: str, metrics: list[str]
) -> None:
    config = load_yaml(index[name].yaml_path, resolve_func=True)
    assert config["class"].__name__ == cls and config["output_type"] == output_type
    assert [entry["metric"] for entry in config["metric_list"]] == metrics
    assert config["custom_dataset"].__name__ == "load_dataset" and config["test_split"] == "test"
