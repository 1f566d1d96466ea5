"""The decode loop of the transformers backend: prefill once, expand n times, sample, drop finished rows.

Used by `hf.HFGenerator` (not meant to be called directly):

    rows = decode(model, [[5, 6, 7], [8, 9]], n=4, temperature=0.6, top_p=0.95, max_new_tokens=128,
                  eos_ids=[2], pad_id=0, seed=0)     # 2 prompts x 4 rows, prompt-major: (token_ids, reason)

Why not `model.generate`: on a small model on CPU the batch pays for every row at every step, and
generate (num_return_sequences=n) runs n copies of each prompt through the prefill and keeps every
row until the last one ends. Toy completions average ~30 tokens and peak near 100, so most of a
128-row batch's work went to rows that had already stopped (measured: 3x slower than this loop).
Here:
- each prompt is prefilled once; its n samples share its keys and values (prefix.py: attention in two
  parts), or for models with other cache layers get copies (DynamicCache.batch_repeat_interleave);
- rows that wrote eos leave the batch (cache rows, attention mask and positions index-selected with
  DynamicCache.batch_select_indices) once they are a quarter of it: compacting copies the cache, so
  it is not done at every step some row stops (COMPACT_AT);
- the KV cache writes into buffers that double when full (BufferLayer), not torch.cat at every step;
- each step is one forward plus a few tensor ops: no Python per row, no text (decoded at the end).

Sampling matches generate's protocol (temperature, then top-p, top-k off; temperature 0 = argmax);
top-p sorts only the TOP_K likeliest tokens when they hold the top-p mass (the same draws).
Each draw uses one uniform number per row from a torch.Generator seeded with `seed`, drawn for
every row of the batch at every step (also for rows that have left): a row's samples depend only on
(seed, its row, the batch's prompts), never on when other rows stop, and the caller's global RNG
state is left alone.
"""

from __future__ import annotations

import contextlib

import torch

from r1cli.generation import prefix
from r1cli.generation.cache import new_cache

# stopped rows leave the batch once they are 1/COMPACT_AT of it. Toy model, 128 prompts x 4: 4 and 8
# equally fast, compacting at every stop a few % slower (the copies), never compacting 2.4x slower
COMPACT_AT = 4
# top-p sorts only this many candidates when they hold top_p of the mass (sorted_probs): a full sort
# of the toy vocabulary (326) for 128 rows took 1.4 ms a step, topk(16) 0.3 ms (measured)
TOP_K = 16

# --- sampling --------------------------------------------------------------------------------


def sorted_probs(logits: torch.Tensor, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities sorted high to low, their token ids) after temperature and top-p; dropped
    tokens get probability 0 (not renormalized). The rule is transformers' TopPLogitsWarper's: a
    token is dropped when the tokens more likely than it already hold >= top_p of the mass.

    With top-p, only the TOP_K most likely tokens are sorted (torch.topk) when they hold >= top_p of
    every row's mass: every token after them is dropped anyway, and their running sums are the
    full sort's. Else (a flat distribution somewhere) the whole vocabulary is sorted."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    # descending sort: the top-p set is a prefix, so the filter and the draw are one cumsum each
    if top_p < 1.0 and probs.shape[-1] > TOP_K:
        sorted_p, order = probs.topk(TOP_K, dim=-1)
        cdf = sorted_p.cumsum(-1)
        if not bool((cdf[:, -1] >= top_p).all()):
            sorted_p, order = probs.sort(dim=-1, descending=True)
            cdf = sorted_p.cumsum(-1)
        return sorted_p.masked_fill(cdf - sorted_p >= top_p, 0.0), order  # the first token always stays
    sorted_p, order = probs.sort(dim=-1, descending=True)
    if top_p < 1.0:
        sorted_p = sorted_p.masked_fill(sorted_p.cumsum(-1) - sorted_p >= top_p, 0.0)
    return sorted_p, order


def pick(logits: torch.Tensor, uniform: torch.Tensor | None, temperature: float, top_p: float) -> torch.Tensor:
    """Next token per row: argmax when `uniform` is None (greedy), else an inverse-CDF draw with
    one uniform number per row from sorted_probs(...)."""
    if uniform is None:
        return logits.argmax(-1)
    sorted_p, order = sorted_probs(logits, temperature, top_p)
    cdf = sorted_p.cumsum(-1)
    at = torch.searchsorted(cdf, (uniform * cdf[:, -1]).unsqueeze(1), right=True)
    # u * total can round up to total: clamp into the kept (non-zero) prefix
    at = torch.minimum(at, (sorted_p > 0).sum(-1, keepdim=True) - 1)
    return order.gather(1, at).squeeze(1)


# --- the loop ----------------------------------------------------------------------------------


@torch.no_grad()  # not inference_mode: a model trained later in the same process must not get inference tensors
def decode(model, prompts: list[list[int]], *, n: int, temperature: float, top_p: float, max_new_tokens: int,
           eos_ids: list[int], pad_id: int, seed: int) -> list[tuple[list[int], str]]:
    """len(prompts) * n rows, prompt-major (prompt i's sample j is row i*n + j): each row's new
    token ids (up to and including its eos) and its finish reason, "stop" or "length"."""
    device = next(model.parameters()).device
    sample = temperature > 0
    rows, width = len(prompts) * n, max(len(x) for x in prompts)
    # left padding: a decoder-only model continues from the last column. The mask is allocated for
    # the whole run; generated columns are 1 from the start (a live row writes one token per step,
    # and step t only passes the first width + t + 1 columns).
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.ones((len(prompts), width + max_new_tokens), dtype=torch.long)
    for r, x in enumerate(prompts):
        ids[r, width - len(x):] = torch.tensor(x)
        mask[r, :width - len(x)] = 0
    ids, mask = ids.to(device), mask.to(device)
    # positions count real tokens only, as generate does for left-padded input
    positions = (mask[:, :width].cumsum(-1) - 1).masked_fill(mask[:, :width] == 0, 1)

    # prefill each prompt once; its n samples share its keys and values (prefix.py) or, for models
    # whose cache that cannot hold, each get a copy

    shared = prefix.new_cache(model, max_new_tokens) if n > 1 else None
    cache = shared if shared is not None else new_cache(model, width + max_new_tokens)
    logits = model(input_ids=ids, attention_mask=mask[:, :width], position_ids=positions,
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    if shared is not None:
        shared.rows_ref[0] = prefix.Rows(len(prompts), n, mask[:, :width])
    elif n > 1:
        cache.batch_repeat_interleave(n)
    if n > 1:
        logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
        positions = positions.repeat_interleave(n, 0)
    position = positions[:, -1] + 1
    with prefix.active(model, shared) if shared is not None else contextlib.nullcontext():
        return _loop(model, cache, shared, logits, mask, position, width=width, rows=rows, sample=sample,
                     temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, eos_ids=eos_ids,
                     pad_id=pad_id, seed=seed, device=device)


def _loop(model, cache, shared, logits, mask, position, *, width, rows, sample, temperature, top_p, max_new_tokens,
          eos_ids, pad_id, seed, device) -> list[tuple[list[int], str]]:
    out = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((rows,), max_new_tokens, dtype=torch.long, device=device)
    stopped = torch.zeros(rows, dtype=torch.bool, device=device)
    eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
    live = torch.arange(rows, device=device)  # batch row -> output row
    running = torch.ones(rows, dtype=torch.bool, device=device)  # batch rows that have not stopped
    rng = torch.Generator(device=device).manual_seed(seed) if sample else None
    for step in range(max_new_tokens):
        uniform = torch.rand(rows, generator=rng, device=device)[live] if sample else None
        token = pick(logits, uniform, temperature, top_p)
        # stopped rows still in the batch write past their length: harmless, rows are cut at the end
        out[live, step] = token
        if eos.numel():
            done = torch.isin(token, eos) & running
            if done.any():
                lengths[live[done]] = step + 1
                stopped[live[done]] = True
                running &= ~done
                finished = len(running) - int(running.sum())
                if finished == len(running):
                    break
                # compacting copies the whole cache: do it once stopped rows are a fair share of
                # the batch rather than at every step some row stops
                if finished * COMPACT_AT >= len(running):
                    keep = running.nonzero().squeeze(1)
                    live, token, mask, position = live[keep], token[keep], mask[keep], position[keep]
                    running = running[keep]
                    cache.batch_select_indices(keep)
                    if shared is not None:
                        shared.rows_ref[0].select(keep)
        if step + 1 == max_new_tokens:
            break
        logits = model(input_ids=token.unsqueeze(1), attention_mask=None if shared is not None else mask[:, :width + step + 1],
                       position_ids=position.unsqueeze(1), past_key_values=cache, use_cache=True).logits[:, -1]
        position = position + 1

    out, lengths, stopped = out.tolist(), lengths.tolist(), stopped.tolist()
    return [(row[:k], "stop" if s else "length") for row, k, s in zip(out, lengths, stopped)]
