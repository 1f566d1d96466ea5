"""`r1 eval`: pass@1 over k samples, pass@j and maj@j for j <= k, cons@k, format and language-consistency rates of a checkpoint.

    r1 eval --model runs/demo/coldstart --data runs/demo/data/eval --out runs/demo/eval_coldstart \\
        [--k 4] [--temperature 0.6] [--top-p 0.95] [--max-new-tokens 256] [--template r1|r1zero] [--limit N]

Works on any HF causal-LM checkpoint dir and any dataset with the canonical prompt columns
(`prompt`, `answer`, `domain`, `language`). The output is an eval dir: one row per sample
(`datasets.load_from_disk(OUT)`: prompt columns + completion, extracted answer, each reward,
tokens, finish reason) and the numbers in `OUT/r1.json` under `metrics` (see
r1cli/evaluation.py for what each one means).
"""

from __future__ import annotations

from pathlib import Path

from r1cli.artifacts import check_input, check_model_dir, check_output, stage_output
from r1cli.config import EvalConfig
from r1cli.data import load_prompts, save_dataset
from r1cli.evaluation import at_k_table, evaluate, metrics_table, model_prompts
from r1cli.tools import check_template, resolve_tools
from r1cli.tools.loop import ToolLoop
from r1cli.generation import check_backend, load_generator
from r1cli.generation.lengths import filter_overhead, fit_prompts, load_tokenizer, model_context
from r1cli.recipe import to_dict


def run(cfg: EvalConfig, *, model: Path, data: Path, out: Path, force: bool = False) -> Path:
    from rich.console import Console

    # --- checks (all before the model loads; the settings were checked when the recipe was resolved) ---
    check_backend(cfg.backend)
    model = check_model_dir(model)
    data = check_input(data, "--data")
    check_output(out, force)
    ds = load_prompts(data)
    if cfg.limit:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    ds, dropped = fit_context(cfg, ds, model, data)

    # --- load, sample, score, write ---
    console = Console()
    with stage_output(out, kind="eval", stage="eval", config=to_dict(cfg), inputs=[model, data], force=force) as run_:
        generator = load_generator(model, backend=cfg.backend)
        if cfg.tools:
            generator = ToolLoop(generator, resolve_tools(cfg.tools, cfg), cfg)
        rows, metrics = evaluate(generator, ds, k=cfg.k, sampling=cfg.sampling, template=cfg.template, seed=cfg.seed,
                                 language_threshold=cfg.language_threshold, r1zero_template=cfg.r1zero_template,
                                 system_prompt=cfg.system_prompt)
        from datasets import Dataset

        save_dataset(Dataset.from_list(rows), run_.partial)
        run_.counts.update(prompts=metrics["n_prompts"], samples=metrics["n_samples"], k=cfg.k)
        run_.counts["dropped_long_prompts"] = dropped
        if cfg.tools:
            run_.counts.update(generator.stats.counts())
        run_.metrics.update(metrics)
    console.print(metrics_table(metrics, title=f"r1 eval {model}"))
    if metrics["n_scored_prompts"]:
        console.print(at_k_table(metrics, title=f"r1 eval {model}"))
    else:
        console.print(f"pass@1 and cons@k are -: {unscored_reason(ds, data)}", markup=False, highlight=False,
                      soft_wrap=True)
    console.print(f"{out}: {metrics['n_samples']} scored samples (datasets.load_from_disk), metrics in {out}/r1.json",
                  markup=False, highlight=False, soft_wrap=True)
    return out


def unscored_reason(ds, data: Path) -> str:
    """Why the accuracy reward scored no prompt (it returns None for a row without a reference answer,
    and for a domain it does not check)."""
    if "answer" not in ds.column_names:
        return (f"{data} has no `answer` column (reference answers), so no sample could be checked: add one, "
                f"e.g. r1 data import {data} --map answer=COLUMN --to DIR")
    if not any(str(a or "").strip() for a in ds["answer"]):
        return f"every `answer` in {data} is empty, so no sample could be checked"
    return (f"the accuracy reward applies to none of the prompts of {data} (their domain is general, or no answer "
            "can be verified): format and language rates are still measured")


def fit_context(cfg: EvalConfig, ds, model: Path, data: Path):
    """(the prompts that leave max_new_tokens of the model's context, how many were left out): the
    tokenizer and config.json are read, not the weights, so a refusal costs seconds."""
    tokenizer = load_tokenizer(model)
    if cfg.tools:
        check_template(tokenizer)
    prompts = model_prompts(ds, cfg.template, cfg.r1zero_template, cfg.system_prompt)
    # what the system prompt or a custom r1zero text adds over what `r1 data filter` measures
    extra = filter_overhead(tokenizer, lambda q: model_prompts([{"prompt": q}], cfg.template, cfg.r1zero_template,
                                                               cfg.system_prompt)[0], cfg.template)
    kept, dropped = fit_prompts(prompts, ds["id"], tokenizer, budget=cfg.sampling.max_new_tokens,
                                context=model_context(model), drop=cfg.drop_long_prompts, budget_name="max_new_tokens",
                                lower="--max-new-tokens {n}", model=model, data=data, template=cfg.template,
                                filter_overhead=extra)
    if dropped:
        ds = ds.select(kept)
        print(f"left out {dropped} of {len(prompts)} prompts that leave fewer than max_new_tokens="
              f"{cfg.sampling.max_new_tokens} tokens of the model's context (drop_long_prompts)")
    return ds, dropped
