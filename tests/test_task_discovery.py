"""Plain ``lm_eval`` finds this package's tasks with no ``--include_path`` (lm_eval_medinj/lm_eval_hook.py).

The subprocess tests run the commands as a user types them, in the installed environment (the
README's ``pip install -e .`` or a wheel), where ``lm_eval_medinj_tasks.pth`` sits in site-packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medinj import lm_eval_hook
from lm_eval_medinj.paths import tasks_path

BIN = Path(sys.executable).parent
OVERRIDE_WARNING = "overrides existing task"


def run(command: list[str] | str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != lm_eval_hook.ENV_VAR}
    environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **env)
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=900, shell=isinstance(command, str)
    )


def card_command(tiny_model_dir: Path, demo_data_dir: Path) -> list[str]:
    """The model card's command, with a local model and the demo data: no --include_path."""
    return [
        "lm_eval",
        "--tasks",
        "medinj_mcq",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir},dtype=float32",
        "--metadata",
        json.dumps({"data_dir": str(demo_data_dir)}),
        "--limit",
        "2",
    ]


def test_startup_hook_imports_nothing(tmp_path: Path) -> None:
    script = (
        "import sys; print('lm_eval' in sys.modules, 'lm_eval_medinj' in sys.modules, "
        "any(type(f).__name__ == 'MedinjLmEvalTasksFinder' for f in sys.meta_path))"
    )
    on = run([sys.executable, "-c", script], tmp_path)
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["False", "False", "True"], (
        "lm_eval_medinj_tasks.pth is not active in this environment; reinstall with `pip install -e .`"
    )
    off = run([sys.executable, "-c", script], tmp_path, **{lm_eval_hook.ENV_VAR: "0"})
    assert off.stdout.split() == ["False", "False", "False"]

    # Importing the start-up module again (as the .pth does) loads no other module.
    reimport = (
        "import sys; del sys.modules['_lm_eval_medinj_startup']; before = set(sys.modules); "
        "import _lm_eval_medinj_startup; print(sorted(set(sys.modules) - before))"
    )
    again = run([sys.executable, "-c", reimport], tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "['_lm_eval_medinj_startup']"


def test_package_tasks_are_added_once(tmp_path: Path) -> None:
    ours = tasks_path().resolve()
    assert lm_eval_hook.with_package_tasks(None) == [ours]
    assert lm_eval_hook.with_package_tasks(str(tmp_path)) == [ours, str(tmp_path)]
    for covered in (str(tasks_path()), ours.parent, [tmp_path, ours]):
        assert lm_eval_hook.with_package_tasks(covered) == covered


def test_unknown_task_manager_fails_naming_the_way_out() -> None:
    class TaskManager:
        def __init__(self, paths: list[str] | None = None) -> None:
            self.paths = paths

    with pytest.raises(lm_eval_hook.LmEvalHookError, match=f"{lm_eval_hook.ENV_VAR}=0.*--include_path"):
        lm_eval_hook.patch_task_manager(TaskManager)


def test_opt_out_values() -> None:
    assert lm_eval_hook.enabled({})
    assert lm_eval_hook.enabled({lm_eval_hook.ENV_VAR: "1"})
    for value in ("0", "false", "No", " off "):
        assert not lm_eval_hook.enabled({lm_eval_hook.ENV_VAR: value})


def test_task_manager_in_process(tmp_path: Path) -> None:
    """In this (hooked) interpreter: include_defaults=False leaves the caller's folders alone."""
    if not lm_eval_hook.enabled():
        pytest.skip(f"{lm_eval_hook.ENV_VAR} turns the hook off in this environment")
    from lm_eval.tasks import TaskManager

    assert getattr(TaskManager.__init__, "__medinj_tasks_hook__", False)
    (tmp_path / "mine.yaml").write_text("task: my_own_task\ndataset_path: json\n", encoding="utf-8")
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    assert manager.include_path == str(tmp_path)
    assert "my_own_task" in manager.all_tasks and not any(t.startswith("medinj_") for t in manager.all_tasks)


@pytest.mark.slow
def test_card_command_finds_tasks(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    completed = run(card_command(tiny_model_dir, demo_data_dir), tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "medinj_mcq_all" in completed.stdout and "medinj_mcqu_all" in completed.stdout
    assert OVERRIDE_WARNING not in completed.stderr


@pytest.mark.slow
def test_opt_out_restores_plain_lm_eval(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    completed = run(card_command(tiny_model_dir, demo_data_dir), tmp_path, **{lm_eval_hook.ENV_VAR: "0"})
    assert completed.returncode != 0
    assert "Tasks not found: medinj_mcq" in completed.stderr


@pytest.mark.slow
def test_include_path_still_works_once(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    metadata = json.dumps({"data_dir": str(demo_data_dir)})
    command = (
        f'lm_eval --include_path "$(medinj tasks-path)" --tasks medinj_mcq --model hf '
        f"--model_args pretrained={tiny_model_dir},dtype=float32 --metadata '{metadata}' --limit 2"
    )
    completed = run(command, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "medinj_mcq_all" in completed.stdout
    assert OVERRIDE_WARNING not in completed.stderr


# --------------------------------------------------------------------------- backends, plugins, faults


def test_plain_lm_eval_finds_the_backends() -> None:
    if not lm_eval_hook.enabled():
        pytest.skip(f"{lm_eval_hook.ENV_VAR} turns the hook off in this environment")
    from lm_eval.api.model import LM
    from lm_eval.api.registry import get_model

    from lm_eval_medinj.models.constrained import CONSTRAINED_REQUEST
    from lm_eval_medinj.models.hf import MedinjHFLM

    assert get_model("medinj-hf") is MedinjHFLM
    assert get_model("hf").__name__ == "HFLM", "lm-eval's own models are still there"
    assert hasattr(LM, CONSTRAINED_REQUEST), "the _gen request type is registered with lm-eval's LM"


@pytest.mark.slow
def test_plain_lm_eval_runs_gen_tasks_on_medinj_hf(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    command = card_command(tiny_model_dir, demo_data_dir)
    command[command.index("medinj_mcq")] = "medinj_mcq_gen"
    command[command.index("hf")] = "medinj-hf"
    completed = run([*command, "--apply_chat_template", "--device", "cpu"], tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "medinj_mcq_all_gen" in completed.stdout and "medinj_mcqu_all_gen" in completed.stdout


def test_the_gen_refusal_names_commands_that_work() -> None:
    from lm_eval_medinj.models.constrained import ConstraintUnsupportedError, refuse_constrained_requests

    with pytest.raises(ConstraintUnsupportedError) as refused:
        refuse_constrained_requests(object(), [])
    assert "`lm_eval --model medinj-hf ...`" in str(refused.value) and "medinj eval" in str(refused.value)


def test_the_task_entry_point_names_the_folder_that_holds_the_yaml() -> None:
    """lm-eval's plugin PR #4015 scans the folder of the module an ``lm_eval.tasks`` entry point names."""
    import importlib
    from importlib.metadata import entry_points

    (entry,) = [ep for ep in entry_points(group=lm_eval_hook.TASKS_ENTRY_POINT_GROUP) if ep.name == "medinj"]
    folder = Path(importlib.import_module(entry.value).__file__).parent
    assert folder == tasks_path() and (folder / "medinj" / "medinj_mcq.yaml").is_file()
    # Were lm-eval to pass that folder itself (then plugin tasks), the hook would not add it again.
    assert lm_eval_hook.with_package_tasks([str(folder)]) == [str(folder)]


def test_a_task_manager_that_loads_plugins_itself_is_left_alone(tmp_path: Path) -> None:
    import importlib.util

    source = (
        "from importlib.metadata import entry_points\n"
        "class TaskManager:\n"
        "    def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):\n"
        '        self.plugins = [ep.value for ep in entry_points(group="lm_eval.tasks")]\n'
    )
    path = tmp_path / "plugin_manager.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("plugin_manager", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert lm_eval_hook.loads_task_plugins(module)
    lm_eval_hook.register_tasks(module)
    assert not getattr(module.TaskManager.__init__, "__medinj_tasks_hook__", False), "indexed once, by lm-eval"
    import lm_eval.tasks.manager

    assert not lm_eval_hook.loads_task_plugins(lm_eval.tasks.manager), "lm-eval 0.4.13 has no task plugins"


def test_internals_that_differ_warn_once_and_leave_lm_eval_working(caplog: pytest.LogCaptureFixture) -> None:
    import types

    class Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            source = "class TaskManager:\n    def __init__(self, paths=None):\n        self.paths = paths\n"
            exec(source, module.__dict__)

    for attempt in range(2):
        module = types.ModuleType(f"lm_eval.tasks.manager_{attempt}")
        module.__name__ = "lm_eval.tasks.manager"
        with caplog.at_level("WARNING", logger=lm_eval_hook.__name__):
            lm_eval_hook._RegisteringLoader(Loader(), lm_eval_hook.register_tasks).exec_module(module)
        assert module.TaskManager(paths=["x"]).paths == ["x"], "the module loaded as lm-eval wrote it"
    warnings = [r for r in caplog.records if "not registered with lm_eval.tasks.manager" in r.getMessage()]
    assert len(warnings) == 1 and "TaskManager.__init__ takes no include_path" in warnings[0].getMessage()


@pytest.mark.slow
def test_a_package_gone_from_under_its_pth_never_breaks_lm_eval(tmp_path: Path) -> None:
    """An editable checkout moved or deleted: the .pth stays, the package no longer imports."""
    gone = tmp_path / "gone"
    (gone / "lm_eval_medinj").mkdir(parents=True)
    (gone / "lm_eval_medinj" / "__init__.py").write_text("raise ImportError('checkout moved')\n", encoding="utf-8")
    script = (
        "from lm_eval.tasks import TaskManager\n"
        "from lm_eval.api.registry import get_model\n"
        "tasks = TaskManager().all_tasks\n"
        "print(len(tasks) > 1000, any(t.startswith('medinj') for t in tasks), get_model('hf').__name__)\n"
    )
    completed = run([sys.executable, "-c", script], tmp_path, PYTHONPATH=str(gone))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["True", "False", "HFLM"]
    assert completed.stderr.count("lm-eval-medinj: start-up hook disabled (ImportError: checkout moved)") == 1
