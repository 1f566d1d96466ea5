"""Shared-prompt attention for the decode loop: the n samples of a prompt read its keys and values once.

Used by decode.py (not meant to be called directly). Sampling n completions per prompt used to repeat
each prompt's KV cache n times (DynamicCache.batch_repeat_interleave), and every decode step's
attention then read all n copies. On CPU that attention is bound by memory traffic, not arithmetic
(measured on the toy model: a third of the sampling time, 1 ms a layer a step for 128 rows over ~85
columns), and the prompt is most of the columns. Here the cache keeps:
- the prompts' keys and values once, P rows (from the prefill), with their padding mask;
- the generated tokens' keys and values per sample (BufferLayer), one row per live sample;
and attention for a one-token query is computed in two parts, merged exactly by their softmax
normalizers (the flash-attention identity):
- prompt part: the live rows' queries are laid out on a (prompt, sample) grid, so one matmul per
  prompt reads its keys once for all its samples (grid places of samples that have stopped hold
  zeros, computed and thrown away);
- generated part: an ordinary batched matmul over each row's own tokens (no padding: every row
  started at the same step).

The attention function is registered with transformers' AttentionInterface as "r1cli_shared_prompt";
decode.py switches the model's config to it for decode steps only (the prefill runs the model's own
attention) and back afterwards; with no mask function registered under that name, transformers
builds no attention mask for those steps.
Grouped-query attention (Qwen2, Llama 3) is handled: a key head's query heads are extra query rows.
Used for models whose cache layers are all plain full attention (decode.py checks); others keep the
repeated cache.
"""

from __future__ import annotations

import threading

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from r1cli.generation.cache import BufferLayer

NAME = "r1cli_shared_prompt"
_ACTIVE = threading.local()  # the cache of the decode loop running in this thread


class Rows:
    """Which prompt and which of its n samples each live row is (shared by all layers)."""

    def __init__(self, prompts: int, n: int, prompt_mask: torch.Tensor):
        device = prompt_mask.device
        rows = torch.arange(prompts * n, device=device)
        self.n, self.prompt, self.slot = n, rows // n, rows % n
        self.prompt_mask = prompt_mask.bool()  # (P, L): True on real prompt tokens

    def select(self, keep: torch.Tensor) -> None:
        self.prompt, self.slot = self.prompt[keep], self.slot[keep]


class SharedPromptLayer(DynamicLayer):
    """One layer's cache: prompt keys/values once per prompt, generated ones per sample."""

    def __init__(self, capacity: int, rows_ref: list):
        super().__init__()
        self.gen = BufferLayer(capacity)
        self.rows_ref = rows_ref  # [Rows], filled after the prefill
        self.prompt_k = self.prompt_v = None

    def update(self, key_states, value_states, *args, **kwargs):
        if self.prompt_k is None:  # the prefill: the prompts themselves, attended by the model's own attention
            # contiguous once here, or every decode step's matmul would copy them
            self.prompt_k, self.prompt_v = key_states.contiguous(), value_states.contiguous()
            self.is_initialized = True
            self.keys, self.values = key_states, value_states
            return key_states, value_states
        return self.gen.update(key_states, value_states)

    def get_seq_length(self) -> int:
        return (0 if self.prompt_k is None else self.prompt_k.shape[2]) + self.gen.get_seq_length()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.gen.batch_select_indices(indices)

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        """(B, 1, Hq, D) attention output of one-token queries (B, Hq, 1, D) over the row's prompt and
        its generated tokens `key`/`value` (B, Hkv, t, D)."""
        rows: Rows = self.rows_ref[0]
        b, hq, _, d = query.shape
        p, hkv, _, _ = self.prompt_k.shape
        g = hq // hkv
        q = query.reshape(b, hkv, g, d)
        # prompt part: queries on a (prompt, sample) grid, each prompt's keys read once
        grid = q.new_zeros((p, rows.n, hkv, g, d))
        grid[rows.prompt, rows.slot] = q
        grid = grid.permute(0, 2, 1, 3, 4).reshape(p, hkv, rows.n * g, d)
        s = torch.matmul(grid, self.prompt_k.transpose(-1, -2)) * scale
        s = s.masked_fill(~rows.prompt_mask[:, None, None, :], float("-inf"))
        m_p = s.amax(-1, keepdim=True)
        e = torch.exp(s - m_p)
        l_p, o_p = e.sum(-1, keepdim=True), torch.matmul(e, self.prompt_v)

        def back(x):  # grid (P, Hkv, n*g, k) -> rows (B, Hkv, g, k)
            x = x.view(p, hkv, rows.n, g, x.shape[-1]).permute(0, 2, 1, 3, 4)
            return x[rows.prompt, rows.slot]

        m_p, l_p, o_p = back(m_p), back(l_p), back(o_p)
        # generated part: each row's own tokens
        s = torch.matmul(q, key.transpose(-1, -2)) * scale  # (B, Hkv, g, t)
        m_g = s.amax(-1, keepdim=True)
        e = torch.exp(s - m_g)
        l_g, o_g = e.sum(-1, keepdim=True), torch.matmul(e, value)
        m = torch.maximum(m_p, m_g)
        a, c = torch.exp(m_p - m), torch.exp(m_g - m)
        out = (o_p * a + o_g * c) / (l_p * a + l_g * c)
        return out.reshape(b, hq, d).unsqueeze(1)


def attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs):
    """transformers attention-interface signature; returns (output (B, q_len, H, D), no weights)."""
    layer = _ACTIVE.cache.layers[module.layer_idx]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    return layer.attend(query, key, value, scale), None


def new_cache(model, capacity: int) -> DynamicCache | None:
    """A DynamicCache of SharedPromptLayers, or None when some layer is not plain full attention
    (sliding window, linear attention...) or the model does not use transformers' attention interface."""
    cache = DynamicCache(config=model.config)
    if not cache.layers or any(type(x) is not DynamicLayer for x in cache.layers):
        return None
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return None
    rows_ref: list = [None]
    cache.layers = [SharedPromptLayer(capacity, rows_ref) for _ in cache.layers]
    cache.rows_ref = rows_ref
    return cache


class active:
    """`with active(model, cache):` decode steps use the shared-prompt attention of `cache`."""

    def __init__(self, model, cache):
        self.config, self.cache = model.config, cache

    def __enter__(self):
        self.saved = self.config._attn_implementation
        _ACTIVE.cache = self.cache
        self.config._attn_implementation = NAME
        return self

    def __exit__(self, *exc):
        self.config._attn_implementation = self.saved
        _ACTIVE.cache = None
        return False


def _register() -> None:
    from transformers import AttentionInterface

    # no mask function is registered under NAME: transformers then builds no mask for decode steps
    # (the prompt padding mask is Rows.prompt_mask; generated tokens need none)
    AttentionInterface.register(NAME, attention)


_register()
