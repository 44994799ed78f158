"""Plain ``lm_eval --tasks medinj_...`` finds this package's tasks, with no ``--include_path``.

lm-eval 0.4.13 has no task-plugin mechanism (EleutherAI PR #4015 proposes one; the package
declares its ``lm_eval.tasks`` entry point for it). Until then, ``lm_eval_medinj_tasks.pth``,
installed into site-packages beside the package (wheel and editable install alike), imports the
top-level ``_lm_eval_medinj_startup`` when Python starts, which puts a finder at the front of
``sys.meta_path``. That finder imports nothing (``os`` and ``sys`` are loaded already) and
answers ``None`` for every module except ``lm_eval.tasks.manager``; only when
lm-eval itself imports that module does it call :func:`find_spec` here, which lets the real
finders load it and then wraps ``TaskManager.__init__`` so that this package's task folder is
indexed right after lm-eval's own tasks and before any ``--include_path`` folder (which can
therefore still override a task). A process that never imports lm-eval pays one string
comparison per import (about 0.3 µs), and loads none of this module.

The folder is not added twice: not when the caller's ``include_path`` already holds it or a
folder above it (``medinj eval``, ``--include_path "$(medinj tasks-path)"``), and not when
``include_defaults=False`` (the caller asked for its own folders only).

Opt out: ``MEDINJ_LM_EVAL_TASKS=0`` (or ``false``/``no``/``off``) in the environment; the
finder is then not installed and ``--include_path "$(medinj tasks-path)"`` or ``medinj eval``
work as before.

Library internals this package relies on, and the versions they were checked against (the one
place that lists them; see also ``lm_eval_medinj/models/cache_api.py`` for transformers'
cache argument):

- lm-eval 0.4.13: ``lm_eval.tasks.manager.TaskManager.__init__(verbosity, include_path,
  include_defaults, metadata)`` (this hook); the ``HFLM`` and ``VLLM`` members the ``medinj-*``
  backends override or call, checked when they are imported (``lm_eval_medinj/models/internals.py``).
  A ``TaskManager`` without those parameters stops the import of ``lm_eval.tasks`` with a
  :class:`LmEvalHookError` naming the opt-out; nothing is patched silently.
- transformers 5.19 and 5.24: the key/value cache argument (``past_key_values`` -> ``cache``
  at 5.24, old name removed in 5.40), in ``lm_eval_medinj/models/cache_api.py``; training's
  ``activation_checkpointing`` argument, new in 5.23 (``train`` extra).

``pyproject.toml`` turns these into version ranges; ``.ci/constraints.txt`` pins what CI runs.
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import os
import sys
from pathlib import Path
from typing import Any

ENV_VAR = "MEDINJ_LM_EVAL_TASKS"
OFF_VALUES = ("0", "false", "no", "off")
TARGET = "lm_eval.tasks.manager"
CHECKED_LM_EVAL = ("0.4.13",)
_REQUIRED_PARAMETERS = ("include_path", "include_defaults")
_MARK = "__medinj_tasks_hook__"


class LmEvalHookError(RuntimeError):
    """lm-eval's ``TaskManager`` is not the one this hook was written for."""


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether the opt-out variable leaves the hook on (the default)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "1")
    return value.strip().lower() not in OFF_VALUES


def _is_startup_finder(finder: object) -> bool:
    return type(finder).__name__ == "MedinjLmEvalTasksFinder"


def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
    """The real spec of ``lm_eval.tasks.manager``, its loader wrapped to patch ``TaskManager``."""
    if name != TARGET:
        return None
    for finder in list(sys.meta_path):
        if _is_startup_finder(finder) or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(name, path, target)
        if spec is not None:
            break
    else:
        return None
    if spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return spec
    spec.loader = _PatchingLoader(spec.loader)
    return spec


class _PatchingLoader(importlib.abc.Loader):
    """Delegates to lm-eval's own loader, then patches the freshly executed module."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, attribute: str) -> Any:  # get_source, get_code, is_package, ...
        return getattr(self._loader, attribute)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        patch_task_manager(getattr(module, "TaskManager", None))


def _lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


def patch_task_manager(task_manager: Any) -> None:
    """Wrap ``TaskManager.__init__`` to index this package's task folder; refuse an unknown one."""
    if task_manager is None:
        raise LmEvalHookError(_unsupported("lm_eval.tasks.manager has no TaskManager"))
    if getattr(task_manager.__init__, _MARK, False):
        return
    original = task_manager.__init__
    signature = inspect.signature(original)
    missing = [name for name in _REQUIRED_PARAMETERS if name not in signature.parameters]
    if missing:
        raise LmEvalHookError(_unsupported(f"TaskManager.__init__ takes no {', '.join(missing)}"))

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments["include_path"]
        if bound.arguments["include_defaults"]:
            bound.arguments["include_path"] = with_package_tasks(given)
        original(*bound.args, **bound.kwargs)
        self.include_path = given  # what the caller passed, as lm-eval would have kept it

    setattr(__init__, _MARK, True)
    task_manager.__init__ = __init__


def with_package_tasks(include_path: Any) -> Any:
    """``include_path`` with this package's task folder first, unless it is already covered."""
    from lm_eval_medinj.paths import tasks_path

    ours = tasks_path().resolve()
    if include_path is None or include_path == "" or include_path == []:
        return [ours]
    given = list(include_path) if isinstance(include_path, list | tuple) else [include_path]
    for folder in given:
        try:
            if ours.is_relative_to(Path(folder).resolve()):
                return include_path
        except (TypeError, OSError):
            continue
    return [ours, *given]


def _unsupported(problem: str) -> str:
    return (
        f"lm-eval-medinj: {problem} (lm-eval {_lm_eval_version()}; this package's task hook was checked "
        f"against lm-eval {', '.join(CHECKED_LM_EVAL)}). Set {ENV_VAR}=0 to turn the hook off and pass "
        '--include_path "$(medinj tasks-path)" to lm_eval, or install lm-eval==0.4.13.'
    )
