"""``protocol: strict`` (with the canonical prompt) reproduces the outputs of the ``_gen`` and
``_greedy`` tasks from before the authors' protocol became the default (golden file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.models.hf import MedinjHFLM
from tests.models.strict_golden import GOLDEN_FILE, RUNS, STRICT_METADATA, run_key, task_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path, smollm2: tuple[Any, Any]) -> dict[str, Any]:
    model, tokenizer = smollm2
    return {
        "tiny": MedinjHFLM(pretrained=str(tiny_model_dir), dtype="float32", batch_size=4, device="cpu"),
        "smollm2": MedinjHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu"),
    }


@pytest.mark.parametrize("run", RUNS, ids=[run_key(*run) for run in RUNS])
def test_strict_protocol_reproduces_the_former_outputs(
    run: tuple[str, str, str, int, bool], models: dict[str, Any], demo_data_dir: Path, frenchmedmcqa_dir: Path
) -> None:
    model, data, task, limit, chat = run
    data_dir = {"demo": demo_data_dir, "frenchmedmcqa": frenchmedmcqa_dir}[data]
    golden = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))[run_key(*run)]
    assert task_outputs(models[model], data_dir, task, limit, chat, STRICT_METADATA) == golden
