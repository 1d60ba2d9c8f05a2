#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a tiny, randomly initialised Qwen3 model that vLLM can serve.

No hub access: the tokenizer is a byte-level BPE trained here on text made
by this script, the weights come from a fixed seed. The result (~1.5 MB) is a
real ``Qwen3ForCausalLM`` checkpoint in safetensors with a chat template.

Usage: make_tiny_model.py OUTPUT_DIR
"""

from __future__ import annotations

import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def training_text() -> list[str]:
    """A small, deterministic corpus: enough for a few hundred merges."""
    words = [
        "the",
        "capital",
        "of",
        "france",
        "is",
        "paris",
        "profile",
        "a",
        "vllm",
        "inference",
        "server",
        "on",
        "rhel",
        "with",
        "nvidia",
        "gpus",
        "trace",
        "token",
        "decoder",
        "layer",
        "kernel",
        "attention",
        "matrix",
        "what",
        "is",
        "hello",
        "world",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
    ]
    lines = []
    for i in range(400):
        lines.append(" ".join(words[(i * k) % len(words)] for k in range(1, 13)))
    return lines


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(vocab_size=512)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        # vLLM's CPU attention accepts head sizes 32/64/80/96/112/128/...
        head_dim=64,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="bfloat16",
    )
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    print(f"tiny Qwen3: {config.num_hidden_layers} layers, vocab {config.vocab_size} -> {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
