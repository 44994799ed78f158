"""Build a tiny random Llama with a BPE tokenizer trained on French text, offline, in seconds.

Used by tests (and by their lm-eval / training subprocesses) as a real local model folder.
Run as a script to build one: ``python -m tests.helpers.tiny_model OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "Réponds à la question à choix unique suivante. Donne uniquement la lettre de la bonne réponse.",
    "Réponds à la question à choix multiples suivante. Donne uniquement les lettres de toutes les "
    "bonnes réponses, dans l'ordre alphabétique, séparées par des virgules.",
    "Question : Quel est le traitement de première intention de l'hypertension artérielle ?",
    "(A) Les diurétiques thiazidiques (B) Les bêtabloquants (C) L'aspirine (D) Le paracétamol (E) Aucun",
    "Réponse : A, B, C, D, E. La patiente présente une fièvre sévère, une hépatite légère.",
    "médicament posologie pharmacie toxicité insuffisance rénale cardiaque enzyme protéine cellule",
    "ABCDEFGHIJ abcdefghijklmnopqrstuvwxyz àâäéèêëïîôöùûüç 0123456789 ,.;:!?()-'\"",
]


def build_tiny_model(
    out_dir: Path,
    vocab_size: int = 512,
    seed: int = 0,
    hidden_size: int = 64,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
) -> Path:
    """Save a tiny random Llama (2 layers, hidden 64 by default) and its tokenizer to ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    print(build_tiny_model(Path(sys.argv[1])))
