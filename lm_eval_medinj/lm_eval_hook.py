"""Plain ``lm_eval`` finds this package's tasks and its ``medinj-*`` backends, with no flag.

lm-eval 0.4.13 has no plugin mechanism (EleutherAI PR #4015 proposes one for tasks: an
``lm_eval.tasks`` entry point naming a module whose folder holds the YAML; this package declares
``lm_eval_medinj.tasks`` for it). Until then, ``lm_eval_medinj_tasks.pth``, installed into
site-packages beside the package (wheel and editable install alike), imports the top-level
``_lm_eval_medinj_startup`` when Python starts, which puts a finder at the front of
``sys.meta_path``. That finder imports nothing and answers ``None`` for every module except the
three below; only when lm-eval itself imports one of them does it call :func:`find_spec` here,
which lets the real finders load the module and then registers this package with it:

- ``lm_eval.tasks.manager``: ``TaskManager.__init__`` indexes this package's task folder right
  after lm-eval's own tasks and before any ``--include_path`` folder (which can therefore still
  override a task). Not when the caller's ``include_path`` already holds the folder or one above
  it (``medinj eval``, ``--include_path "$(medinj tasks-path)"``), not with
  ``include_defaults=False``, and not when lm-eval loads ``lm_eval.tasks`` entry points itself
  (PR #4015): then it finds the folder through the entry point, and indexing it here too would
  index it twice.
- ``lm_eval.models``: ``medinj-hf`` and ``medinj-vllm`` join lm-eval's model registry as lazy
  entries (``lm_eval --model medinj-hf`` works; vLLM is imported only when used).
- ``lm_eval.api.model``: the ``_gen`` tasks' request type is registered: every backend refuses
  it unless it declares that it enforces constraints (:mod:`lm_eval_medinj.models.constrained`).

A process that never imports lm-eval pays one string comparison per import, and loads none of
this module. The hook can never break lm-eval: if registering fails (lm-eval's internals differ
from those below), it warns once and stands aside; lm-eval then runs without this package's tasks
and backends, which ``medinj eval`` and ``--include_path "$(medinj tasks-path)"`` still provide.

Opt out: ``MEDINJ_LM_EVAL_TASKS=0`` (or ``false``/``no``/``off``) in the environment.

Library internals this package relies on, and the versions they were checked against (the one
place that lists them; see also ``lm_eval_medinj/models/cache_api.py`` for transformers'
cache argument):

- lm-eval 0.4.13: ``lm_eval.tasks.manager.TaskManager.__init__(verbosity, include_path,
  include_defaults, metadata)``; ``lm_eval.api.registry.model_registry.register(name,
  target="module:Class")``; ``lm_eval.evaluator.evaluate`` dispatching on
  ``getattr(lm, instance.request_type)``; the ``HFLM`` and ``VLLM`` members the ``medinj-*``
  backends override or call, checked when they are imported
  (``lm_eval_medinj/models/internals.py``).
- transformers 5.19 and 5.24: the key/value cache argument (``past_key_values`` -> ``cache``
  at 5.24, old name removed in 5.40), in ``lm_eval_medinj/models/cache_api.py``; training's
  ``activation_checkpointing`` argument, new in 5.23 (``train`` extra).

``pyproject.toml`` turns these into version ranges; ``.ci/constraints.txt`` pins what CI runs.
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

ENV_VAR = "MEDINJ_LM_EVAL_TASKS"
OFF_VALUES = ("0", "false", "no", "off")
TASK_MANAGER = "lm_eval.tasks.manager"
MODELS = "lm_eval.models"
MODEL_API = "lm_eval.api.model"
CHECKED_LM_EVAL = ("0.4.13",)
# The entry-point group of lm-eval's task plugins (PR #4015), which this package declares.
TASKS_ENTRY_POINT_GROUP = "lm_eval.tasks"
_REQUIRED_PARAMETERS = ("include_path", "include_defaults")
_MARK = "__medinj_tasks_hook__"


class LmEvalHookError(RuntimeError):
    """lm-eval's internals are not the ones this hook was written for."""


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether the opt-out variable leaves the hook on (the default)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "1")
    return value.strip().lower() not in OFF_VALUES


def _is_startup_finder(finder: object) -> bool:
    return type(finder).__name__ == "MedinjLmEvalTasksFinder"


def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
    """The real spec of one of the three lm-eval modules, its loader wrapped to register this package."""
    register = REGISTRATIONS.get(name)
    if register is None:
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
    spec.loader = _RegisteringLoader(spec.loader, register)
    return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Delegates to lm-eval's own loader, then registers this package with the fresh module."""

    def __init__(self, loader: Any, register: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._register = register

    def __getattr__(self, attribute: str) -> Any:  # get_source, get_code, is_package, ...
        return getattr(self._loader, attribute)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            self._register(module)
        except Exception as error:  # never break lm-eval: say so once, and stand aside
            _stand_aside(module.__name__, error)


_WARNED: set[str] = set()


def _stand_aside(module: str, error: Exception) -> None:
    if module in _WARNED:
        return
    _WARNED.add(module)
    message = (
        f"lm-eval-medinj: not registered with {module} ({error}); lm-eval runs without this package's "
        f'tasks and backends from it. Use `medinj eval ...` or `lm_eval --include_path "$(medinj tasks-path)" ...`, '
        f"or set {ENV_VAR}=0 to silence this."
    )
    log.warning(message)
    if not logging.getLogger().handlers and not log.handlers:
        sys.stderr.write(message + "\n")


def _lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- tasks


def loads_task_plugins(module: ModuleType) -> bool:
    """Whether lm-eval's task manager loads ``lm_eval.tasks`` entry points itself (PR #4015)."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    return "entry_points" in source and f'"{TASKS_ENTRY_POINT_GROUP}"' in source


def register_tasks(module: ModuleType) -> None:
    """Make ``TaskManager`` index this package's tasks, unless lm-eval loads task plugins itself."""
    if loads_task_plugins(module):
        return
    patch_task_manager(getattr(module, "TaskManager", None))


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


# --------------------------------------------------------------------------- backends


def register_backends(module: ModuleType | None = None) -> None:
    """``medinj-hf`` and ``medinj-vllm`` in lm-eval's model registry, as lazy ``module:Class`` entries.

    lm-eval's own models are registered first: ``get_model`` imports them only into an empty
    registry, so registering ours into an empty one would hide ``hf`` and the rest.
    """
    import lm_eval.models  # noqa: F401  (lm-eval's models first; a no-op when the hook runs from its import)
    from lm_eval.api.registry import model_registry

    from lm_eval_medinj.models import BACKENDS

    for name, target in BACKENDS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def register_request_type(module: ModuleType | None = None) -> None:
    """The ``_gen`` request type, refused by every backend that does not declare it enforces constraints."""
    from lm_eval_medinj.models.constrained import register_request_type as register

    register()


REGISTRATIONS: dict[str, Callable[[ModuleType], None]] = {
    TASK_MANAGER: register_tasks,
    MODELS: register_backends,
    MODEL_API: register_request_type,
}
