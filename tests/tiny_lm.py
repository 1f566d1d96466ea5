"""A tiny random Llama + character tokenizer, built in memory in well under a second.

For tests of code that only needs *a* causal LM (generation shapes, padding, seeding), not
a trained one: the toy world's base model (`toy_base` fixture) is for tests that need
sensible output.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"] + list("答案是思考中文数字加乘等于")
    vocab = {"<pad>": 0, "<eos>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()  # without it decode puts a space between characters
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.add_tokens(["<think>", "</think>", "<answer>", "</answer>", "<|user|>", "<|assistant|>"])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2):
    import torch

    # Llama, not Qwen2: transformers 5 reloads a qwen2 checkpoint's tokenizer as Qwen2Tokenizer, which
    # drops spaces from a character tokenizer (see r1cli/toy/base.py)
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    # a random model's logits are flat; scaling them up makes greedy choices clear-cut
    with torch.no_grad():
        model.lm_head.weight.mul_(8)
    return model


def save_tiny(out: Path, seed: int = 0) -> Path:
    """An HF checkpoint dir (config, safetensors, tokenizer) of the tiny model."""
    tok = tiny_tokenizer()
    model = tiny_model(tok, seed)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)
