"""A ``_gen`` task runs only on a backend that declares it enforces constraints (stand-in backends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM, CacheHook
from lm_eval.tasks import TaskManager

from lm_eval_medinj.mcq.task import ConstraintUnsupportedError
from lm_eval_medinj.models.constrained import CONSTRAINED_REQUEST, EnforcesConstraints
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY

TASK = "medinj_mcqu_native_gen"


class StandInLM(LM):
    """A backend that declares nothing and would happily answer every request, unconstrained."""

    def __init__(self) -> None:
        super().__init__()
        self.generated: list[Any] = []

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return [(0.0, True) for _ in requests]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return [0.0 for _ in requests]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.generated.extend(requests)
        return ["A" for _ in requests]


class DeclaringLM(EnforcesConstraints, StandInLM):
    """The same backend, declaring that it enforces the constraint it is given."""


@pytest.fixture(scope="module")
def manager(demo_data_dir: Path) -> TaskManager:
    return TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(demo_data_dir)}
    )


def _run(model: Any, manager: TaskManager) -> dict[str, Any]:
    return simple_evaluate(model=model, tasks=[TASK], task_manager=manager, limit=2, log_samples=True)


def test_a_backend_that_declares_nothing_refuses_gen_tasks(manager: TaskManager) -> None:
    model = StandInLM()
    with pytest.raises(
        ConstraintUnsupportedError, match=f"{TASK}.*StandInLM.*--model medinj-hf or --model medinj-vllm"
    ):
        _run(model, manager)
    assert model.generated == [], "nothing was generated unconstrained"


def test_the_refusal_does_not_depend_on_the_clear_message(
    manager: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(LM, CONSTRAINED_REQUEST)  # as if installing the refusal had failed
    model = StandInLM()
    with pytest.raises(AttributeError, match=CONSTRAINED_REQUEST):
        _run(model, manager)
    assert model.generated == []


def test_a_declaring_backend_receives_every_constraint(manager: TaskManager) -> None:
    model = DeclaringLM()
    results = _run(model, manager)
    assert len(model.generated) == 2
    assert all(CONSTRAINT_KEY in request.args[1] for request in model.generated)
    assert len(results["samples"][TASK]) == 2


def test_constrained_answers_use_lm_evals_response_cache(manager: TaskManager) -> None:
    model = DeclaringLM()
    model.set_cache_hook(CacheHook(None))
    model.cache_hook.dbdict = {}  # type: ignore[assignment]  (CachingLM's SqliteDict)
    task = next(iter(manager.load([TASK])["tasks"].values()))
    task.build_all_requests(limit=2)
    assert {request.request_type for request in task.instances} == {CONSTRAINED_REQUEST}
    assert model.generate_until_constrained(task.instances) == ["A", "A"]
    assert model.generate_until_constrained(task.instances) == ["A", "A"]
    assert len(model.generated) == 2, "the second run read the cache"
