"""`r1 eval`: pass@1 over k samples, cons@k, format and language-consistency rates of a checkpoint.

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
from r1cli.errors import UserError
from r1cli.evaluation import evaluate, metrics_table
from r1cli.generation import SamplingParams, check_backend
from r1cli.recipe import to_dict
from r1cli.templates import TEMPLATES


def check_config(cfg: EvalConfig) -> None:
    if cfg.template not in TEMPLATES:
        raise UserError(f"--template must be one of {', '.join(TEMPLATES)}, got {cfg.template!r}")
    if cfg.k < 1:
        raise UserError(f"--k must be >= 1 (samples per prompt), got {cfg.k}")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError(f"--limit must be >= 1, got {cfg.limit}")
    if not 0 < cfg.language_threshold <= 1:
        raise UserError(f"language_threshold must be in (0, 1], got {cfg.language_threshold}")
    if cfg.sampling.batch_size < 1:
        raise UserError(f"sampling.batch_size must be >= 1, got {cfg.sampling.batch_size}")
    if cfg.template == "r1zero" and cfg.r1zero_template is not None and "{prompt}" not in cfg.r1zero_template:
        raise UserError("r1zero_template must contain {prompt} where the question goes")
    s = cfg.sampling
    SamplingParams(n=cfg.k, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens).check()
    check_backend(cfg.backend)


def run(cfg: EvalConfig, *, model: Path, data: Path, out: Path, force: bool = False) -> Path:
    from rich.console import Console

    from r1cli.data import load_prompts, save_dataset
    from r1cli.generation import load_generator

    # --- checks (all before the model loads) ---
    check_config(cfg)
    model = check_model_dir(model)
    data = check_input(data, "--data")
    check_output(out, force)
    ds = load_prompts(data)
    if cfg.limit:
        ds = ds.select(range(min(cfg.limit, len(ds))))

    # --- load, sample, score, write ---
    console = Console()
    with stage_output(out, kind="eval", stage="eval", config=to_dict(cfg), inputs=[model, data], force=force) as run_:
        generator = load_generator(model, backend=cfg.backend)
        rows, metrics = evaluate(generator, ds, k=cfg.k, sampling=cfg.sampling, template=cfg.template, seed=cfg.seed,
                                 language_threshold=cfg.language_threshold, r1zero_text=cfg.r1zero_template)
        from datasets import Dataset

        save_dataset(Dataset.from_list(rows), run_.partial)
        run_.counts.update(prompts=metrics["n_prompts"], samples=metrics["n_samples"], k=cfg.k)
        run_.metrics.update(metrics)
    console.print(metrics_table(metrics, title=f"r1 eval {model}"))
    console.print(f"wrote {out}: {metrics['n_samples']} scored samples (datasets.load_from_disk), metrics in {out}/r1.json")
    return out
