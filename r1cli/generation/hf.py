"""The transformers generation backend: batched, left-padded, KV-cached sampling on CPU or one GPU.

Used through `load_generator(...)`:

    gen = load_generator("runs/demo/base")
    outs = gen.generate(prompts, SamplingConfig(temperature=0.6, batch_size=32), n=8, seed=0, progress=True)

Why it looks the way it does:
- Many prompts x n samples go through one decode loop (`decode.py`: each prompt prefilled once,
  its keys and values shared by its n samples, stopped rows dropped from the batch): a forward pass over 32x8
  rows costs far less than 256 forward passes over one row on a small model.
- Prompts are sorted by length within a window of batches so a batch wastes little left
  padding; results come back in prompt order.
- The sampling rule is pinned (temperature, then top-p, top_k off, no repetition penalty) instead
  of inheriting whatever the checkpoint's generation_config.json says: eval numbers must mean
  the paper's protocol whatever model is loaded.
- Each batch draws from its own torch.Generator seeded with (seed, batch number), so the same
  seed and batches give the same samples and the caller's RNG state is left untouched.
- Text is decoded once per batch with skip_special_tokens=True, as TRL does: the reasoning tags
  must be ordinary added tokens to survive (the toy tokenizer's are).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Iterator

import torch

from r1cli.config import SamplingConfig
from r1cli.errors import UserError
from r1cli.generation import Completion, render_prompt
from r1cli.generation.decode import decode

# prompts are sorted by length inside windows of this many batches
SORT_WINDOW_BATCHES = 8


class HFGenerator:
    """Samples completions with `transformers`' generate (see the module docstring)."""

    def __init__(self, model, tokenizer, device: str | torch.device | None = None, dtype=None):
        if device is not None or dtype is not None:
            model = model.to(device=device, dtype=dtype)
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.eos_ids = eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        # any id works for padding: the attention mask hides it; eos is the usual choice
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, dtype=None) -> "HFGenerator":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:  # bf16 halves memory on GPU; CPU matmuls in bf16 are slow and less exact
            dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise UserError(f"--model {path} could not be loaded as a causal LM ({first}): give an HF checkpoint dir") from None
        return cls(model.to(device).eval(), tokenizer)

    # --- prompts ------------------------------------------------------------------------------

    def encode(self, prompts: list) -> list[list[int]]:
        """Token ids of each rendered prompt. No special tokens are added: the chat template
        writes its own, and plain-text prompts are tokenized as TRL's GRPO trainer does."""
        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        for i, x in enumerate(ids):
            if not x:
                raise UserError(f"prompt {i} is empty after tokenization: remove it or give it text")
        return [list(x) for x in ids]

    # --- generation ---------------------------------------------------------------------------

    @torch.no_grad()  # see decode.py
    def generate(self, prompts: list, sampling: SamplingConfig, n: int = 1, seed: int = 0,
                 progress=None) -> list[list[Completion]]:
        """n completions for each prompt, in prompt order (see Generator in __init__.py)."""
        if n < 1:
            raise UserError(f"the number of samples per prompt must be >= 1, got {n}")
        batch_size = sampling.batch_size
        ids = self.encode(prompts)
        results: list[list[Completion] | None] = [None] * len(ids)
        batches = list(length_sorted_batches([len(x) for x in ids], batch_size, batch_size * SORT_WINDOW_BATCHES))
        was_training = self.model.training
        self.model.eval()
        try:
            with _progress(progress, len(ids) * n) as advance:
                for b, idx in enumerate(batches):
                    outs = self._generate_batch([ids[i] for i in idx], sampling, n, seed=seed * 1_000_003 + b)
                    for i, comps in zip(idx, outs):
                        results[i] = comps
                    advance(len(idx) * n, sum(c.num_tokens for cs in outs for c in cs))
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch: list[list[int]], sampling: SamplingConfig, n: int,
                        seed: int) -> list[list[Completion]]:
        sample = sampling.temperature > 0
        # greedy: one row per prompt, copied n times (n greedy runs would be n identical runs)
        rows_per_prompt = n if sample else 1
        rows = decode(self.model, batch, n=rows_per_prompt, temperature=sampling.temperature, top_p=sampling.top_p,
                      max_new_tokens=sampling.max_new_tokens, eos_ids=self.eos_ids, pad_id=self.pad_id, seed=seed)
        comps = self._completions(rows)
        grouped = [comps[i * rows_per_prompt:(i + 1) * rows_per_prompt] for i in range(len(batch))]
        if sample:
            return grouped
        # separate objects, so a caller editing one sample does not edit its copies
        return [[dataclasses.replace(g[0], token_ids=list(g[0].token_ids)) for _ in range(n)] for g in grouped]

    def _completions(self, rows: list[tuple[list[int], str]]) -> list[Completion]:
        """Completions of decode()'s rows; text without the eos, all rows decoded in one call."""
        bodies = [tokens[:-1] if reason == "stop" else tokens for tokens, reason in rows]
        texts = self.tokenizer.batch_decode(bodies, skip_special_tokens=True) if rows else []
        return [Completion(text=text, token_ids=tokens, num_tokens=len(tokens), finish_reason=reason)
                for text, (tokens, reason) in zip(texts, rows)]


# --- helpers ----------------------------------------------------------------------------------


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a completion: the generation config's (may be a list) and the tokenizer's."""
    ids: list[int] = []
    gc = getattr(model, "generation_config", None)
    for source in (getattr(gc, "eos_token_id", None), tokenizer.eos_token_id):
        for t in source if isinstance(source, (list, tuple)) else [source]:
            if t is not None and t not in ids:
                ids.append(int(t))
    return ids


def length_sorted_batches(lengths: list[int], batch_size: int, window: int) -> Iterator[list[int]]:
    """Indices in batches; within each window, longest first so each batch has similar lengths.

    The window (not the whole list) keeps batches the same whatever comes after them, so a
    caller feeding prompts in fixed chunks gets the same batches, hence the same samples."""
    for start in range(0, len(lengths), window):
        idx = sorted(range(start, min(len(lengths), start + window)), key=lambda i: -lengths[i])
        for b in range(0, len(idx), batch_size):
            yield idx[b:b + batch_size]


@contextlib.contextmanager
def _progress(progress, total: int):
    """Yield advance(samples, tokens). progress: None/False (silent), True (own bar) or a rich Progress."""
    if not progress:
        yield lambda samples, tokens: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    own = not hasattr(progress, "add_task")
    from rich.console import Console

    # stderr: stdout stays clean for tables and for piping
    bar = Progress(TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True)) if own else progress
    task = bar.add_task("generate", total=total, rate="")
    t0, done, toks = time.time(), 0, 0

    def advance(samples: int, tokens: int):
        nonlocal done, toks
        done, toks = done + samples, toks + tokens
        dt = max(time.time() - t0, 1e-9)
        bar.update(task, advance=samples, rate=f"{done / dt:.1f} samples/s, {toks / dt:.0f} tok/s")

    if own:
        with bar:
            yield advance
    else:
        yield advance
