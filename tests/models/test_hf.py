"""``medinj-hf`` on the tiny model: shared-prefix scores, constrained ``_gen`` tasks, clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import StaticCache

from lm_eval_medinj.mcq.task import ConstraintUnsupportedError
from lm_eval_medinj.models.cache_api import passed_cache
from lm_eval_medinj.models.hf import MedinjHFLM
from lm_eval_medinj.paths import tasks_path
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY
from tests.models.checks import assert_same_scores, check_gen_samples

MODEL_ARGS = {"dtype": "float32", "batch_size": 4, "device": "cpu"}


@pytest.fixture(scope="module")
def demo_tasks(demo_data_dir: Path) -> TaskManager:
    """One task index per module: indexing lm-eval's task folders takes tens of seconds."""
    return _task_manager(demo_data_dir)


@pytest.fixture(scope="module")
def medinj_hf(tiny_model_dir: Path) -> MedinjHFLM:
    return MedinjHFLM(pretrained=str(tiny_model_dir), **MODEL_ARGS)


@pytest.fixture(scope="module")
def medinj_hf_no_reuse(tiny_model_dir: Path) -> MedinjHFLM:
    return MedinjHFLM(pretrained=str(tiny_model_dir), reuse_prefix=False, **MODEL_ARGS)


@pytest.fixture(scope="module")
def medinj_hf_apart(tiny_model_dir: Path) -> MedinjHFLM:
    """Decodes every batch of ``batch_size`` rows on its own."""
    return MedinjHFLM(pretrained=str(tiny_model_dir), decode_batch_size=MODEL_ARGS["batch_size"], **MODEL_ARGS)


@pytest.fixture(scope="module")
def plain_hf(tiny_model_dir: Path) -> HFLM:
    return HFLM(pretrained=str(tiny_model_dir), **MODEL_ARGS)


def _task_manager(data_dir: Path) -> TaskManager:
    return TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(data_dir)})


def _evaluate(model: HFLM, manager: TaskManager, task_name: str, limit: int, **kwargs: Any) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` on one task or group, samples logged."""
    return simple_evaluate(
        model=model, tasks=[task_name], task_manager=manager, limit=limit, log_samples=True, **kwargs
    )


def _requests(manager: TaskManager, task_name: str, limit: int, model: HFLM, chat: bool) -> list[Any]:
    task = next(iter(manager.load([task_name])["tasks"].values()))
    task.build_all_requests(
        limit=limit, apply_chat_template=chat, chat_template=model.apply_chat_template if chat else None
    )
    return task.instances


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("task_name", ["medinj_mcq_native", "medinj_mcqu_native"])
def test_shared_prefix_scores_equal_plain_hf(
    demo_tasks: TaskManager, medinj_hf: MedinjHFLM, plain_hf: HFLM, task_name: str, chat: bool
) -> None:
    requests = _requests(demo_tasks, task_name, 4, plain_hf, chat)
    assert_same_scores(plain_hf.loglikelihood(requests), medinj_hf.loglikelihood(requests))


@pytest.mark.parametrize("chat", [False, True])
def test_reusing_shared_heads_changes_no_score_and_no_output(
    demo_tasks: TaskManager, medinj_hf: MedinjHFLM, medinj_hf_no_reuse: MedinjHFLM, chat: bool
) -> None:
    scored = _requests(demo_tasks, "medinj_mcq_native", 8, medinj_hf, chat)
    generated = _requests(demo_tasks, "medinj_mcq_native_gen", 8, medinj_hf, chat)
    before = medinj_hf.reused_prefix_tokens
    assert_same_scores(medinj_hf_no_reuse.loglikelihood(scored), medinj_hf.loglikelihood(scored))
    after_scoring = medinj_hf.reused_prefix_tokens
    assert medinj_hf_no_reuse.generate_until(generated) == medinj_hf.generate_until(generated)
    assert after_scoring > before, "scoring batches should have reused their shared instruction"
    assert medinj_hf.reused_prefix_tokens > after_scoring, "generation batches should have reused it too"
    assert medinj_hf_no_reuse.reused_prefix_tokens == 0


@pytest.mark.parametrize("chat", [False, True])
def test_decoding_batches_together_changes_no_output(
    demo_tasks: TaskManager, medinj_hf: MedinjHFLM, medinj_hf_apart: MedinjHFLM, chat: bool
) -> None:
    generated = _requests(demo_tasks, "medinj_mcq_native_gen", 12, medinj_hf, chat)
    apart, apart_forwards = _with_forwards(medinj_hf_apart, lambda: medinj_hf_apart.generate_until(generated))
    together, together_forwards = _with_forwards(medinj_hf, lambda: medinj_hf.generate_until(generated))
    assert together == apart
    assert max(rows for rows, _ in apart_forwards) == MODEL_ARGS["batch_size"]
    together_rows = max(rows for rows, _ in together_forwards)
    assert together_rows == len(generated) > MODEL_ARGS["batch_size"], "batches should decode together"


def test_decoding_groups_keep_their_cache_within_the_token_budget(
    demo_tasks: TaskManager,
    medinj_hf: MedinjHFLM,
    medinj_hf_apart: MedinjHFLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generated = _requests(demo_tasks, "medinj_mcq_native_gen", 12, medinj_hf, False)
    apart = medinj_hf_apart.generate_until(generated)
    _, unbounded = _with_forwards(medinj_hf, lambda: medinj_hf.generate_until(generated))
    # One token short of the whole stack: the first two batches still fit, the third does not.
    budget = max(rows * columns for rows, columns in unbounded) - 1
    monkeypatch.setattr(medinj_hf, "decode_cache_tokens", budget)
    together, bounded = _with_forwards(medinj_hf, lambda: medinj_hf.generate_until(generated))
    assert together == apart
    assert max(rows * columns for rows, columns in bounded) <= budget
    assert max(rows for rows, _ in bounded) == 2 * MODEL_ARGS["batch_size"]


def _with_forwards(model: HFLM, run: Callable[[], list[str]]) -> tuple[list[str], list[tuple[int, int]]]:
    """``run()``'s outputs, and the rows and static cache columns (0 without one) of every forward of ``model``."""
    forwards: list[tuple[int, int]] = []

    def record(_: Any, args: Any, kwargs: dict[str, Any]) -> None:
        cache = passed_cache(kwargs)
        columns = cache.layers[0].max_cache_len if isinstance(cache, StaticCache) else 0
        forwards.append((len(kwargs["input_ids"]), columns))

    hook = model.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        return run(), forwards
    finally:
        hook.remove()


@pytest.mark.parametrize("chat", [False, True])
def test_free_generation_decodes_batches_together_and_matches_plain_hf(
    demo_tasks: TaskManager, medinj_hf: MedinjHFLM, plain_hf: HFLM, chat: bool
) -> None:
    requests = _requests(demo_tasks, "medinj_mcq_native_greedy", 12, plain_hf, chat)
    outputs, forwards = _with_forwards(medinj_hf, lambda: medinj_hf.generate_until(requests))
    assert outputs == plain_hf.generate_until(requests)
    together_rows = max(rows for rows, _ in forwards)
    assert together_rows == len(requests) > MODEL_ARGS["batch_size"], "batches should decode together"


def test_free_generation_is_left_to_lm_eval_with_a_think_end_token(
    tiny_model_dir: Path, demo_tasks: TaskManager, plain_hf: HFLM
) -> None:
    thinking = MedinjHFLM(pretrained=str(tiny_model_dir), think_end_token="</think>", **MODEL_ARGS)
    requests = _requests(demo_tasks, "medinj_mcq_native_greedy", 8, plain_hf, False)
    outputs, forwards = _with_forwards(thinking, lambda: thinking.generate_until(requests))
    assert not thinking.stacks_free_generation
    assert max(rows for rows, _ in forwards) == MODEL_ARGS["batch_size"]
    assert all(columns == 0 for _, columns in forwards), "lm-eval's path decodes with a dynamic cache"
    assert len(outputs) == len(requests)


@pytest.mark.parametrize("chat", [False, True])
def test_gen_tasks_emit_only_constrained_answers(demo_tasks: TaskManager, medinj_hf: MedinjHFLM, chat: bool) -> None:
    results = _evaluate(medinj_hf, demo_tasks, "medinj_gen", 6, apply_chat_template=chat)
    assert check_gen_samples(results, ["medinj_mcqu_all_gen", "medinj_mcq_all_gen"]) == 12
    assert set(results["results"]["medinj_mcq_all_gen"]) >= {"em,none", "hamming,none"}


def test_frenchmedmcqa_gen_tasks_emit_only_constrained_answers(frenchmedmcqa_dir: Path, medinj_hf: MedinjHFLM) -> None:
    results = _evaluate(medinj_hf, _task_manager(frenchmedmcqa_dir), "medinj_frenchmedmcqa_gen", 8)
    assert check_gen_samples(results, ["medinj_frenchmedmcqa_mcqu_gen", "medinj_frenchmedmcqa_mcq_gen"]) == 16


def test_gen_task_under_plain_hf_stops_with_a_clear_error(demo_tasks: TaskManager, plain_hf: HFLM) -> None:
    with pytest.raises(ConstraintUnsupportedError, match="--model medinj-hf or --model medinj-vllm"):
        simple_evaluate(model=plain_hf, tasks=["medinj_mcqu_native_gen"], task_manager=demo_tasks, limit=2)


def test_plain_requests_still_generate_freely(demo_tasks: TaskManager, medinj_hf: MedinjHFLM) -> None:
    results = _evaluate(medinj_hf, demo_tasks, "medinj_mcqu_native_greedy", 2)
    samples = results["samples"]["medinj_mcqu_native_greedy"]
    assert all(CONSTRAINT_KEY not in sample["arguments"][0][1] for sample in samples)
    assert all(isinstance(sample["resps"][0][0], str) for sample in samples)


@pytest.mark.slow
def test_medinj_eval_cli_runs_medinj_hf(tmp_path: Path, tiny_model_dir: Path, demo_data_dir: Path) -> None:
    command = [
        sys.executable, "-m", "lm_eval_medinj.cli", "eval",
        "--model", "medinj-hf",
        "--model_args", f"pretrained={tiny_model_dir},dtype=float32",
        "--device", "cpu",
        "--tasks", "medinj_mcqu_native_gen,medinj_mcq_native",
        "--metadata", json.dumps({"data_dir": str(demo_data_dir)}),
        "--limit", "2",
        "--output_path", str(tmp_path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())
    assert {"medinj_mcqu_native_gen", "medinj_mcq_native"} <= set(results["results"])


@pytest.fixture(scope="module")
def lora_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter of the tiny model with random (non-zero) weights, saved as lm-eval's ``peft=`` loads it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    folder = tmp_path_factory.mktemp("lora")
    get_peft_model(base, config).save_pretrained(folder)
    return folder


def test_a_peft_adapter_generates_and_scores_as_under_plain_hf(
    tiny_model_dir: Path, lora_adapter_dir: Path, demo_tasks: TaskManager
) -> None:
    """``peft=`` wraps the model in PEFT, whose forward passes the cache argument through by keyword."""
    adapted = MedinjHFLM(pretrained=str(tiny_model_dir), peft=str(lora_adapter_dir), **MODEL_ARGS)
    plain = HFLM(pretrained=str(tiny_model_dir), peft=str(lora_adapter_dir), **MODEL_ARGS)
    generated = _requests(demo_tasks, "medinj_mcq_native_gen", 8, plain, True)
    free = _requests(demo_tasks, "medinj_mcq_native_greedy", 8, plain, True)
    scored = _requests(demo_tasks, "medinj_mcq_native", 4, plain, True)
    adapter = {"pretrained": str(tiny_model_dir), "peft": str(lora_adapter_dir)}
    apart = MedinjHFLM(**adapter, reuse_prefix=False, decode_batch_size=1, **MODEL_ARGS)
    assert adapted.generate_until(generated) == apart.generate_until(generated)
    assert adapted.generate_until(free) == plain.generate_until(free)
    assert_same_scores(plain.loglikelihood(scored), adapted.loglikelihood(scored))
