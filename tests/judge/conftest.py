"""Fixtures for the judge tests: a second tiny model, a served model, the small labelled set, SmolLM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.tiny_model import build_tiny_model
from tests.judge.openai_server import serve_model

DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny random Llama (other weights, same tokenizer): a second judge."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-b"), seed=1)


@pytest.fixture(scope="session")
def served_tiny_model(tiny_model_dir: Path) -> Iterator[str]:
    """The tiny model behind an OpenAI-compatible server on 127.0.0.1; yields its base URL."""
    with serve_model(tiny_model_dir, lifetime_s=600) as url:
        yield url


@pytest.fixture(scope="session")
def labelled_small() -> Path:
    """24 hand-written French items with a 1-5 human rating."""
    return DATA_DIR / "labelled_small.csv"


@pytest.fixture(scope="session")
def smollm2_judge_dir(smollm2: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct saved as a float32 folder for ``hf:`` judges (skips without its GGUF)."""
    model, tokenizer = smollm2
    folder = tmp_path_factory.mktemp("smollm2-judge")
    # transformers dequantises the GGUF to float32 but refuses to save a model loaded through its
    # GGUF quantizer: save without it, then put it back on the shared model.
    quantizer, quantization_config = model.hf_quantizer, getattr(model.config, "quantization_config", None)
    model.hf_quantizer = None
    if quantization_config is not None:
        del model.config.quantization_config
    try:
        model.save_pretrained(folder)
    finally:
        model.hf_quantizer = quantizer
        if quantization_config is not None:
            model.config.quantization_config = quantization_config
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread per judge test (restored after): on a shared 2-core machine, two
    threads ran ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
