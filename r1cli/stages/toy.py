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
    with stage_output(out, kind="checkpoint", stage="toy-base", config=asdict(cfg), force=force) as run:
        t0 = time.time()
        tokenizer = tb.build_tokenizer(max(512, cfg.max_length))
        tried: list[dict] = []
        best = None
        for attempt in range(cfg.attempts):
            # another start (initial weights and corpus order) for each attempt; the first is the seed's own
            seed = cfg.seed + 1000 * attempt
            random.seed(seed)
            torch.manual_seed(seed)
            model = tb.build_model(cfg, tokenizer)
            params = sum(p.numel() for p in model.parameters())
            data = tb.packed_corpus(tokenizer, seed, cfg.steps * cfg.batch_size, cfg.max_length)
            precision = "bf16" if tb.use_bf16(cfg.precision) else "fp32"
            console.print(f"toy base: Llama {params / 1e6:.2f}M params, vocab {len(tokenizer)}, "
                          f"{data.numel() / 1e6:.2f}M pretraining tokens ({cfg.steps} steps x {cfg.batch_size} x "
                          f"{cfg.max_length}, {precision}), start {attempt + 1} of at most {cfg.attempts} (seed {seed})")
            offset = attempt * cfg.steps  # one loss curve across the starts
            loss = tb.pretrain(model, data, cfg, lambda rec, o=offset, a=attempt: run.log_metrics(
                {**rec, "step": rec["step"] + o, "attempt": a + 1}))
            probe = tb.copy_probe(model, tokenizer)
            console.print(f"copying (greedy, held-out prompts): repeat {probe['copy_repeat']:.0%} "
                          f"(after a CoT {probe['copy_repeat_cot']:.0%}), translate {probe['copy_translate']:.0%}, "
                          f"operands {probe['copy_operands']:.0%}")
            tried.append({"seed": seed, "final_loss": round(loss, 4), **probe})
            if best is None or min(probe.values()) > min(best[3].values()):
                best = (attempt, model, loss, probe)
            if min(probe.values()) >= cfg.min_copy:
                break
            worst = min(probe, key=probe.get)
            if attempt + 1 < cfg.attempts:
                console.print(f"toy base: {worst} {probe[worst]:.0%} is below min_copy {cfg.min_copy:.0%}: "
                              "pretraining again from another start")
            else:
                console.print(f"[yellow]toy base: {worst} {probe[worst]:.0%} is below min_copy {cfg.min_copy:.0%} after "
                              f"{cfg.attempts} starts: keeping the one that copies most; later stages may learn little")
        kept, model, loss, probe = best
        train_s = time.time() - t0
        model.save_pretrained(str(run.partial))
        tokenizer.save_pretrained(str(run.partial))
        run.counts.update(steps=cfg.steps * len(tried), tokens=data.numel() * len(tried))
        run.metrics.update(final_loss=round(loss, 4), params=params, vocab_size=len(tokenizer), train_time_s=round(train_s, 1),
                           precision=precision, starts=len(tried), start_seed=tried[kept]["seed"],
                           probe_passed=min(probe.values()) >= cfg.min_copy)
        if len(tried) > 1:
            run.metrics["starts_tried"] = tried
        run.metrics.update(probe)
        if cfg.eval_prompts:
            run.metrics.update(tb.zero_shot(model, tokenizer, cfg.seed, cfg.eval_prompts))
            m = run.metrics
            console.print(f"zero-shot (greedy, first {m['zero_shot_prompts']} eval prompts): "
                          f"accuracy {m['zero_shot_r1_accuracy']:.1%}, R1 format {m['zero_shot_r1_format_rate']:.1%}; "
                          f"r1zero template: accuracy {m['zero_shot_r1zero_accuracy']:.1%}, "
                          f"format {m['zero_shot_r1zero_format_rate']:.1%}")
    console.print(f"toy base: final loss {run.metrics['final_loss']:.3f}")
    return Path(out)
