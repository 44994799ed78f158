"""Local models for the OEQ tests: a tiny random BERT encoder and a tiny Llama taught fixed answers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

CONTINUATION_AFTER = "\n\nQuestion : Et ensuite ?"


def build_tiny_encoder(out_dir: Path, seed: int = 0) -> Path:
    """Save a random 2-layer BERT (hidden 32) with a WordPiece tokenizer trained on French words."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    corpus = ["Le patient présente une hépatite sévère ou légère, une fièvre et une toux sèche."] * 10
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[(t, tokenizer.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out_dir)
    return out_dir


def teach_answers(
    model_dir: Path, plain: Mapping[str, str], chat: Mapping[str, str], out_dir: Path, max_steps: int = 200
) -> Path:
    """Train the tiny Llama in ``model_dir`` until greedy decoding after each prompt gives its answer.

    Training stops once every continuation token is the arg-max of the teacher-forced logits
    (exactly when greedy decoding reproduces the continuation) with a loss below 0.1, a margin
    against rounding differences between this forward pass and lm-eval's generation.

    ``plain`` maps prompts without a chat template to answers: the prompt is followed by
    " answer" and then :data:`CONTINUATION_AFTER` (a new prompt section, where generation must
    stop). ``chat`` maps prompts rendered by the chat template (ending with the generation
    prompt) to answers, followed by "answer<|im_end|>" and the same continuation.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    pairs = [(prompt, f" {answer}{CONTINUATION_AFTER}") for prompt, answer in plain.items()]
    pairs += [(prompt, f"{answer}{tokenizer.eos_token}{CONTINUATION_AFTER}") for prompt, answer in chat.items()]
    examples = [(tokenizer.encode(context), tokenizer.encode(continuation)) for context, continuation in pairs]
    width = max(len(c) + len(a) for c, a in examples)
    ids = torch.full((len(examples), width), tokenizer.pad_token_id)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (context, continuation) in enumerate(examples):
        sequence = context + continuation
        ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(context) : len(sequence)] = torch.tensor(continuation)
        mask[row, : len(sequence)] = 1
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    model.train()
    for _ in range(max_steps):
        output = model(input_ids=ids, attention_mask=mask, labels=labels)
        predicted = output.logits[:, :-1].argmax(-1)
        if ((predicted == labels[:, 1:]) | (labels[:, 1:] == -100)).all() and output.loss < 0.1:
            break
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    else:
        raise RuntimeError(f"the tiny model did not learn its answers in {max_steps} steps")
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
