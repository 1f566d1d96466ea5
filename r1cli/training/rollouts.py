"""GRPO's rollouts sampled with r1cli's decode loop instead of `model.generate`: `decode_loop: true`.

TRL's GRPOTrainer (without vLLM) samples a batch's completions with transformers' `generate`: every
prompt is repeated `num_generations` times and prefilled once per copy, and every row stays in the
batch until the last one ends. `r1 eval` and `r1 reject-sample` sample with r1cli/generation/decode.py
instead (each prompt prefilled once and shared by its samples, finished rows leave the batch); this
module lets GRPO do the same through TRL's public `rollout_func` hook (`decode_rollout`): TRL hands it a
batch's prompts and takes back their token ids; the model is unwrapped as TRL's own generation does it
(ZeRO-3 gather, FSDP full parameters).

The sampling is the same protocol (temperature, then top-p; the completion ends with its first eos,
which it keeps, as TRL's does); the draws are not the same ones, so a run differs from TRL's generate
by chance only. Each call's seed is drawn from torch's global generator, which TRL seeds and restores
on --resume, as `generate` draws from it. With `trl.use_vllm` vLLM samples and the loop is not used.
What the loop does not do is refused by `check` before the model loads: transformers' continuous
batching, top-k / min-p / repetition penalty, extra generation kwargs. Prompts are text (r1cli's
stages have no images).
Measured on the toy (stage 2's 8 prompts x 8 completions of <= 96 tokens, one thread): 0.77-0.95 s a
batch against 1.5-1.8 s with generate; whole steps 1.33x faster (bench/grpo_decode.py).
"""

from __future__ import annotations

import itertools

from r1cli.errors import UserError


def check(cfg, args) -> None:
    """Refuse, before the model loads, a recipe whose generation the decode loop cannot do."""
    if not getattr(cfg, "decode_loop", False) or args.use_vllm:  # with vLLM, vLLM samples: the loop is not used
        return
    clashes = {"trl.use_transformers_continuous_batching": args.use_transformers_continuous_batching,
               "trl.use_transformers_paged": getattr(args, "use_transformers_paged", False),  # its deprecated name
               "trl.top_k": args.top_k not in (None, 0),
               "trl.min_p": args.min_p is not None,
               "trl.repetition_penalty": args.repetition_penalty != 1.0,
               "trl.generation_kwargs": bool(args.generation_kwargs),
               "trl.cache_implementation": args.cache_implementation is not None}
    bad = [k for k, v in clashes.items() if v]
    if bad:
        raise UserError(f"decode_loop samples with temperature and top-p only: unset {', '.join(bad)}, "
                        "or set decode_loop: false")


def groups(prompt_ids: list[list[int]]) -> int:
    """The size of the runs of identical consecutive prompts when they are all one size (TRL's sampler
    repeats each prompt num_generations times in a row), else 1."""
    runs = [len(list(run)) for _, run in itertools.groupby(prompt_ids)]
    return runs[0] if len(set(runs)) == 1 else 1


def decode_rollout(prompts: list, trainer) -> dict:
    """TRL's `rollout_func`: the prompts of one generation batch (each repeated num_generations times in a
    row by TRL's sampler), tokenized as TRL tokenizes them, sampled with `decode`. No sampling logprobs
    (TRL's own transformers path has none either)."""
    import torch
    from trl.models import unwrap_model_for_generation  # TRL's own generation path uses it

    from r1cli.generation.decode import decode  # imports torch

    prompt_ids, images, multimodal_fields = trainer._tokenize_prompts(prompts)
    if images is not None or multimodal_fields:
        raise UserError("decode_loop samples text prompts only: set decode_loop: false for multimodal data")
    n = groups(prompt_ids)
    seed = int(torch.randint(0, 2**62, (1,)).item())
    args = trainer.args
    with (unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                      gather_deepspeed3_params=args.ds3_gather_for_generation,
                                      gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs) as model,
          trainer._dist.summon_full_params(trainer.model_wrapped, recurse=False)):
        sample = dict(temperature=trainer.temperature, top_p=trainer.top_p, eos_ids=list(trainer.eos_token_ids),
                      pad_id=trainer._tokenizer.pad_token_id)
        rows = decode(model, prompt_ids[::n], n=n, max_new_tokens=trainer.max_completion_length, seed=seed, **sample)
        completions = [tokens for tokens, _ in rows]
        if getattr(trainer, "tool_rollout", None) is None:
            return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None}
        # with tools: run the calls, append their results and sample on (env_mask 0 on the results: no loss)
        continue_ = lambda ps, budget, s: [t for t, _ in decode(model, ps, n=1, max_new_tokens=budget, seed=s, **sample)]  # noqa: E731
        completions, env_mask = trainer.tool_rollout.run(prompt_ids, completions, trainer.max_completion_length,
                                                         continue_, seed)
    return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None, "env_mask": env_mask}
