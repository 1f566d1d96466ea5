"""`r1 toy data OUT` and `r1 toy base OUT`: build the toy world every test and the demo run on.

    r1 toy data runs/demo/data --seed 0      # rl, coldstart, coldstart_general, eval, general, general_eval, helpful_pairs, helpful_pairs_eval, safety,
                                             # rl_tools, coldstart_tools, eval_tools (the calculator task)
    r1 toy base runs/demo/base --seed 0      # a word-level tokenizer + a tiny Llama pretrained from scratch

What the world holds is in r1cli/toy/ (problems.py: the arithmetic task and its held-out split;
general.py: chat, preference and safety rows; corpus.py: the pretraining "web"; base.py: the
tokenizer, the model and its pretraining loop). This module only writes them as stage outputs.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from pathlib import Path

from r1cli.artifacts import stage_output, write_sub_manifest
from r1cli.toy.config import ToyBaseConfig, ToyDataConfig
from r1cli.data import save_dataset
from r1cli.toy import base as tb
from r1cli.toy import problems as toy

# --- r1 toy data --------------------------------------------------------------------------------


def make_toy_data(cfg: ToyDataConfig, out: str | Path, force: bool = False) -> Path:
    from datasets import Dataset
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    splits = toy.build(cfg)  # every check runs before OUT.partial/ is made
    kinds = {"rl": "prompts", "coldstart": "sft", "coldstart_general": "sft", "eval": "prompts", "general": "prompts", "general_eval": "prompts",
             "helpful_pairs": "preferences", "helpful_pairs_eval": "preferences", "safety": "safety",
             "rl_tools": "prompts", "coldstart_tools": "sft", "eval_tools": "prompts"}
    table = Table(title=escape(f"r1 toy data -> {out}"))
    for col in ("split", "kind", "rows", "zh", "example"):
        table.add_column(col, overflow="fold", max_width=60 if col == "example" else None)
    with stage_output(out, kind="dataset", stage="toy-data", config=asdict(cfg), force=force) as run:
        for name, rows in splits.items():
            d = run.partial / name
            save_dataset(Dataset.from_list(rows), d)
            zh = sum(r.get("language") == "zh" for r in rows)
            write_sub_manifest(d, run, "dataset", counts={"rows": len(rows), "zh": zh}, metrics={"schema": kinds[name]})
            run.counts[name] = len(rows)
            first = rows[0]
            example = first.get("messages", first.get("prompt"))[-1]["content"]
            table.add_row(name, kinds[name], str(len(rows)), f"{zh / len(rows):.0%}", escape(example.replace("\n", "\\n")))
        run.metrics["eval_problems_held_out"] = len(toy.problems(True))
        run.metrics["train_problems"] = len(toy.problems(False))
    Console().print(table)
    return Path(out)


# --- r1 toy base ----------------------------------------------------------------------------------


def make_toy_base(cfg: ToyBaseConfig, out: str | Path, force: bool = False) -> Path:
    import torch
    from rich.console import Console

    console = Console()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    with stage_output(out, kind="checkpoint", stage="toy-base", config=asdict(cfg), force=force) as run:
        t0 = time.time()
        tokenizer = tb.build_tokenizer(max(512, cfg.max_length))
        model = tb.build_model(cfg, tokenizer)
        params = sum(p.numel() for p in model.parameters())
        data = tb.packed_corpus(tokenizer, cfg.seed, cfg.steps * cfg.batch_size, cfg.max_length)
        precision = "bf16" if tb.use_bf16(cfg.precision) else "fp32"
        console.print(f"toy base: Llama {params / 1e6:.2f}M params, vocab {len(tokenizer)}, "
                      f"{data.numel() / 1e6:.2f}M pretraining tokens ({cfg.steps} steps x {cfg.batch_size} x {cfg.max_length}, {precision})")
        loss = tb.pretrain(model, data, cfg, run.log_metrics)
        train_s = time.time() - t0
        model.save_pretrained(str(run.partial))
        tokenizer.save_pretrained(str(run.partial))
        run.counts.update(steps=cfg.steps, tokens=data.numel())
        run.metrics.update(final_loss=round(loss, 4), params=params, vocab_size=len(tokenizer), train_time_s=round(train_s, 1),
                           precision=precision)
        run.metrics.update(tb.copy_probe(model, tokenizer))
        m = run.metrics
        console.print(f"copying (greedy, held-out prompts): repeat {m['copy_repeat']:.0%} "
                      f"(after a CoT {m['copy_repeat_cot']:.0%}), translate {m['copy_translate']:.0%}, "
                      f"operands {m['copy_operands']:.0%}")
        if cfg.eval_prompts:
            run.metrics.update(tb.zero_shot(model, tokenizer, cfg.seed, cfg.eval_prompts))
            m = run.metrics
            console.print(f"zero-shot (greedy, first {m['zero_shot_prompts']} eval prompts): "
                          f"accuracy {m['zero_shot_r1_accuracy']:.1%}, R1 format {m['zero_shot_r1_format_rate']:.1%}; "
                          f"r1zero template: accuracy {m['zero_shot_r1zero_accuracy']:.1%}, "
                          f"format {m['zero_shot_r1zero_format_rate']:.1%}")
    console.print(f"toy base: final loss {run.metrics['final_loss']:.3f}")
    return Path(out)
