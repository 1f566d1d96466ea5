"""DAPO's dynamic sampling (arXiv 2503.14476, Sec. 3.2) on TRL's GRPOTrainer: `dynamic_sampling: true`.

A group whose completions all got the same reward has zero advantage and teaches nothing; when most
groups are like that (a task the model already solves, or cannot yet), most of a step is wasted.
DAPO drops such groups and samples more prompts until the batch is full. TRL 1.16 has no such
setting (its issue #3708 is open), so it is built here, around TRL's `_generate_and_score_completions`
(TRL's generation + rewards + advantages for one generation batch; r1cli/training/grpo.py's trainer
calls `generate_and_score` in its place), and nothing of the loss:

1. TRL generates and scores the batch as usual; the rewards it computed are kept (`_calculate_rewards`)
   and each group's weighted reward is checked for zero spread (as TRL's frac_reward_zero_std does).
2. Each dropped group is replaced by a fresh prompt of the same `domain` (so `r1 align`'s share of
   general prompts stays as it was), drawn at random from the training set, and TRL generates and
   scores those; repeat for the groups still without signal, at most `dynamic_sampling_max_rounds`
   times.
3. The batch keeps its size: groups still missing after the last round are filled with dropped
   ones (zero advantage: they add nothing to the policy gradient). So TRL's buffering across
   gradient_accumulation_steps / steps_per_generation / num_iterations sees the batch it expects;
   the rows of the rounds are padded to one width and the token count of the loss normalizer
   (`num_items_in_batch`) is recounted over the rows kept.

Telemetry (metrics.jsonl, through TRL's metrics): `dynamic_sampling/zero_std_frac` (share of the
batch's groups as first sampled that had zero spread), `dynamic_sampling/extra_generations`
(completions generated beyond the batch), `dynamic_sampling/rounds`, `dynamic_sampling/filled_frac`
(share of the final batch's groups with a signal). TRL's own reward metrics average over all rounds.

One process only: a refill round would have to generate the same number of prompts on every rank
and regroup rows across ranks; `check` refuses more processes with one line.
"""

from __future__ import annotations

import random

from r1cli.errors import UserError

# batch keys padded on the left (prompts); every other 2-D key is padded on the right (completions)
LEFT = ("prompt_ids", "prompt_mask")


def check(cfg, args) -> None:
    """Refuse what dynamic sampling cannot do, before the model loads."""
    if getattr(cfg, "dynamic_sampling", False) and args.world_size > 1:
        raise UserError(f"dynamic_sampling runs on one process, this launch has {args.world_size}: launch one "
                        "process, or set dynamic_sampling: false")


def zero_std_groups(rewards_per_func, weights, num_generations: int, aggregation: str):
    """Bool per group: its completions carry no advantage signal (every reward equal, NaN-aware)."""
    import torch

    def spread(x):  # max - min over a group's scored values; 0 when fewer than two are scored
        lo = torch.where(torch.isnan(x), torch.inf, x).min(dim=1).values
        hi = torch.where(torch.isnan(x), -torch.inf, x).max(dim=1).values
        return torch.nan_to_num(hi - lo, nan=0.0, posinf=0.0, neginf=0.0)

    if aggregation == "normalize_then_sum":  # each reward is normalized within its group on its own
        grouped = rewards_per_func.view(-1, num_generations, rewards_per_func.size(1))
        spreads = torch.stack([spread(grouped[:, :, k]) for k in range(grouped.size(2))], dim=1)
        return torch.isclose(spreads, torch.zeros_like(spreads)).all(dim=1)
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    rewards = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    rewards[unscorable] = torch.nan
    s = spread(rewards.view(-1, num_generations))
    return torch.isclose(s, torch.zeros_like(s))


def take_rows(batch: dict, rows: list[int]) -> dict:
    """The batch restricted to `rows` (tensors and lists along dim 0; scalars as they are)."""
    import torch

    idx = torch.tensor(rows, dtype=torch.long)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and v.ndim > 0:
            out[k] = v[idx.to(v.device)]
        elif isinstance(v, list):
            out[k] = [v[i] for i in rows]
        else:
            out[k] = v
    return out


def concat_rows(parts: list[dict], pad_token_id: int) -> dict:
    """Join batches of several rounds row-wise, padding 2-D tensors to one width (prompts on the left)."""
    import torch
    import torch.nn.functional as F

    if len(parts) == 1:
        return parts[0]
    out = {}
    for k in parts[0]:
        vals = [p[k] for p in parts]
        v0 = vals[0]
        if isinstance(v0, torch.Tensor) and v0.ndim == 2:
            width = max(v.size(1) for v in vals)
            fill = pad_token_id if k in ("prompt_ids", "completion_ids") else 1 if k == "tool_mask" else 0
            padded = []
            for v in vals:
                gap = width - v.size(1)
                padded.append(F.pad(v, (gap, 0) if k in LEFT else (0, gap), value=fill) if gap else v)
            out[k] = torch.cat(padded, dim=0)
        elif isinstance(v0, torch.Tensor) and v0.ndim >= 1:
            out[k] = torch.cat(vals, dim=0)
        elif isinstance(v0, list):
            out[k] = [x for v in vals for x in v]
        else:
            out[k] = v0
    return out


def fresh_rows(trainer, domains: list, rnd: random.Random) -> list[dict]:
    """One fresh training row per entry of `domains`, of that domain (any row when it has none)."""
    ds = trainer.train_dataset
    pools = getattr(trainer, "_ds_pools", None)
    if pools is None:
        col = ds["domain"] if "domain" in ds.column_names else [None] * len(ds)
        pools = {}
        for i, d in enumerate(col):
            pools.setdefault(d, []).append(i)
        trainer._ds_pools = pools
    every = range(len(ds))
    return [dict(ds[rnd.choice(pools.get(d) or every)]) for d in domains]


def generate_and_score(trainer, inputs: list[dict], generate_and_score_once) -> dict:
    """TRL's `_generate_and_score_completions` for one generation batch, with its zero-spread groups replaced
    by fresh prompts' groups (steps 1-3 of the module docstring). `generate_and_score_once` is TRL's own
    method; `trainer.last_rewards` holds the rewards its last call computed."""
    g = trainer.num_generations

    def zero_groups(batch_size: int) -> list[bool]:
        return zero_std_groups(trainer.last_rewards, trainer.reward_weights, g,
                               trainer.multi_objective_aggregation)[: batch_size // g].tolist()

    first = generate_and_score_once(inputs)
    zero = zero_groups(len(inputs))
    n_groups = len(zero)
    kept = [(first, [r for q in range(n_groups) if not zero[q] for r in range(q * g, (q + 1) * g)])]
    dropped = [q for q in range(n_groups) if zero[q]]
    missing = [inputs[q * g].get("domain") for q in dropped]
    # reproducible: a function of the seed and the trainer's step counters only
    rnd = random.Random(f"{trainer.args.seed}:{trainer.state.global_step}:{trainer._step}")
    rounds = extra = 0
    while missing and rounds < trainer.dynamic_sampling_rounds:
        rounds += 1
        fresh = fresh_rows(trainer, missing, rnd)
        rows = [row for row in fresh for _ in range(g)]
        out = generate_and_score_once(rows)
        extra += len(rows)
        z = zero_groups(len(rows))
        kept.append((out, [r for q in range(len(z)) if not z[q] for r in range(q * g, (q + 1) * g)]))
        missing = [fresh[q].get("domain") for q in range(len(z)) if z[q]]
    n_signal = sum(len(rows) for _, rows in kept) // g
    # groups still missing: the first round's dropped groups (zero advantage, no policy gradient)
    fill = dropped[: max(n_groups - n_signal, 0)]
    kept.append((first, [r for q in fill for r in range(q * g, (q + 1) * g)]))
    parts = [take_rows(b, rows) for b, rows in kept if rows]
    batch = concat_rows(parts, trainer._tokenizer.pad_token_id)
    batch = take_rows(batch, list(range(len(inputs))))  # more signal than slots: keep the batch size
    mask = batch["completion_mask"]
    if "tool_mask" in batch:
        mask = mask * batch["tool_mask"]
    batch["num_items_in_batch"] = mask.sum()
    metrics = trainer._metrics["train"]
    metrics["dynamic_sampling/zero_std_frac"].append(sum(zero) / max(n_groups, 1))
    metrics["dynamic_sampling/extra_generations"].append(float(extra))
    metrics["dynamic_sampling/rounds"].append(float(rounds))
    metrics["dynamic_sampling/filled_frac"].append(min(n_signal, n_groups) / max(n_groups, 1))
    return batch
