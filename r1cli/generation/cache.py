"""The KV cache of r1cli's decode loop: transformers' DynamicCache with buffer layers that grow by
doubling (used by decode.py for every row, by prefix.py for each sample's own tokens)."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class BufferLayer(DynamicLayer):
    """transformers' DynamicLayer writing into a buffer. DynamicLayer grows by torch.cat, copying the
    whole cache at every step (a quarter of the decode time on the toy model); here a step copies
    only its new token, and dropping rows copies the filled part once. The buffer doubles when full
    (up to `capacity`) instead of being allocated for max_new_tokens up front: with a real run's 32k
    budget that would reserve the longest possible completion for every row."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if not self.is_initialized:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.k_buf = self.v_buf = key_states[:, :, :0]
            self.is_initialized = True
        if end > self.k_buf.shape[2]:
            self._grow(max(end, min(self.capacity, 2 * end + 128)), key_states, value_states)
        self.k_buf[:, :, self.length:end] = key_states
        self.v_buf[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.k_buf[:, :, :end], self.v_buf[:, :, :end]
        return self.keys, self.values

    def _grow(self, size: int, key_states, value_states) -> None:
        for name, like in (("k_buf", key_states), ("v_buf", value_states)):
            new = like.new_empty(like.shape[:2] + (size, like.shape[-1]))
            new[:, :, :self.length] = getattr(self, name)[:, :, :self.length]
            setattr(self, name, new)

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep batch rows `indices`, in that order."""
        if not self.is_initialized:
            return
        for name in ("k_buf", "v_buf"):
            old = getattr(self, name)
            new = old.new_empty((len(indices),) + old.shape[1:])
            new[:, :, :self.length] = old[:, :, :self.length].index_select(0, indices)
            setattr(self, name, new)
        self.keys, self.values = self.k_buf[:, :, :self.length], self.v_buf[:, :, :self.length]

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            rows = torch.arange(self.k_buf.shape[0], device=self.k_buf.device)
            self.batch_select_indices(rows.repeat_interleave(repeats))


def new_cache(model, capacity: int):
    """transformers' DynamicCache for `model`, its plain full-attention layers swapped for BufferLayers
    (sliding-window or other special layers are left as they are)."""
    cache = DynamicCache(config=model.config)
    cache.layers = [BufferLayer(capacity) if type(x) is DynamicLayer else x for x in cache.layers]
    return cache
