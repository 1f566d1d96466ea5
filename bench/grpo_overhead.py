"""Step time of `r1 grpo` (the stage function, in-process) against a plain TRL GRPOTrainer script
with the same model, data, rewards and settings, in one run. Target: ratio <= 1.05.

    .venv/bin/python bench/grpo_overhead.py [--steps 8] [--reps 3] [--threads 1] [--model DIR --data DIR]

Without --model/--data a toy world is built in a temp dir (`r1 toy data`, and `r1 toy base` with
the default architecture, briefly trained: a step's time depends on the shapes, not the weights).
Settings: recipes/toy/grpo.yaml (its rewards and its trl section), max_steps=--steps, no checkpoints
(saving is not part of a step; with it on, both would pay the same TRL code).
- ours: r1cli.stages.grpo.run(cfg, ...) as `r1 grpo` calls it: checks, reward wrappers that log
  samples, telemetry (metrics.jsonl, progress, warnings), the manifest and OUT.
- plain: GRPOConfig + GRPOTrainer + train(), the same reward functions from the registry and the
  same value for every GRPOConfig field (checked against the training_args.bin our run saved).
The two alternate rep by rep, after one untimed warm-up each (the math-verify pool starts once), so a
machine shared with other jobs loads both alike. Printed: seconds per step (TRL's train_runtime /
steps, the same clock for both), median over reps, the ratio; and each side's end-to-end wall time
(ours includes the input checks and writing OUT). No assertion: this prints numbers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# fields that name places or switch off bars and prints; none changes what a step computes
IGNORED = {"output_dir", "logging_dir", "disable_tqdm", "run_name", "hub_token"}


def toy_world(tmp: Path) -> tuple[Path, Path]:
    from r1cli.cli import main

    main(["toy", "data", str(tmp / "data"), "--set", "n_rl=400", "--set", "n_coldstart=64", "--set", "n_eval=16",
          "--set", "n_general=32", "--set", "n_general_eval=8", "--set", "n_helpful_pairs=32", "--set", "n_safety=32"])
    main(["toy", "base", str(tmp / "base"), "--steps", "20", "--set", "eval_prompts=0"])
    return tmp / "base", tmp / "data" / "rl"


def config(steps: int, extra: list[str]):
    from r1cli.config import GRPOStageConfig
    from r1cli.recipe import resolve

    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", *extra]
    return resolve(GRPOStageConfig, ROOT / "recipes/toy/grpo.yaml", sets, stage="grpo")


# --- the two sides -------------------------------------------------------------------------------


def ours(cfg, model: Path, data: Path, out: Path) -> tuple[float, float]:
    """(seconds per step, end-to-end seconds)."""
    import json

    from r1cli.stages import grpo

    t0 = time.perf_counter()
    grpo.run(cfg, model=model, data=data, out=out, force=True)
    wall = time.perf_counter() - t0
    m = json.loads((out / "r1.json").read_text())
    return m["metrics"]["train_runtime_s"] / m["counts"]["steps"], wall


def plain_args(cfg, out: Path):
    """What a hand-written script would pass: the recipe's trl section, CPU settings, no bars."""
    import torch
    from trl import GRPOConfig

    cpu = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False, "fp16": False,
                                                "gradient_checkpointing": False, "ddp_find_unused_parameters": False}
    kw = {"report_to": [], "seed": cfg.seed, "data_seed": cfg.seed, "disable_tqdm": True, "logging_steps": 5,
          "save_total_limit": 1, **cpu, **cfg.trl}
    return GRPOConfig(output_dir=str(out), reward_weights=list(cfg.rewards.values()), **kw)


def plain(cfg, model: Path, data: Path, out: Path) -> tuple[float, float]:
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOTrainer

    from r1cli.rewards import resolve_rewards

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    ds = load_from_disk(str(data))
    funcs = [fn for _, fn, _ in resolve_rewards(cfg.rewards, prefilled_think=False, template=cfg.template,
                                               **cfg.reward_options)]
    torch.manual_seed(cfg.seed)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    trainer = GRPOTrainer(model=lm, reward_funcs=funcs, args=plain_args(cfg, out), train_dataset=ds,
                          processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    wall = time.perf_counter() - t0
    return result.metrics["train_runtime"] / trainer.state.global_step, wall


def differing_args(cfg, ours_out: Path, tmp: Path) -> list[str]:
    """GRPOConfig fields where our run's saved arguments and the plain script's differ."""
    import torch

    mine = torch.load(ours_out / "training_args.bin", weights_only=False).to_dict()
    theirs = plain_args(cfg, tmp / "args").to_dict()
    return sorted(k for k in set(mine) | set(theirs) if k not in IGNORED and mine.get(k) != theirs.get(k))


# --- the run -------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="GRPO steps per timed run")
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each side, alternating")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--model", type=Path, help="model dir (default: a toy base built here)")
    ap.add_argument("--data", type=Path, help="RL prompts dir (default: the toy world's rl split)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override, as `r1 grpo --set`")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from r1cli.training import quiet_libraries

    quiet_libraries()
    tmp = Path(tempfile.mkdtemp(prefix="grpo_overhead_"))
    try:
        model, data = (a.model, a.data) if a.model and a.data else toy_world(tmp)
        cfg = config(a.steps, a.sets)
        warm = config(1, a.sets)
        ours(warm, model, data, tmp / "ours")
        plain(warm, model, data, tmp / "plain")
        times = {"ours": [], "plain": []}
        walls = {"ours": [], "plain": []}
        for rep in range(a.reps):
            for name, fn in (("ours", ours), ("plain", plain)) if rep % 2 == 0 else (("plain", plain), ("ours", ours)):
                step, wall = fn(cfg, model, data, tmp / name)
                times[name].append(step)
                walls[name].append(wall)
                print(f"rep {rep + 1} {name:5s}: {step:.3f} s/step, {wall:.1f} s end to end", flush=True)
        diff = differing_args(cfg, tmp / "ours", tmp)
        t = {k: statistics.median(v) for k, v in times.items()}
        w = {k: statistics.median(v) for k, v in walls.items()}
        # each rep's pair ran back to back: their ratio cancels most of the load other jobs put on the machine
        paired = statistics.median(o / p for o, p in zip(times["ours"], times["plain"]))
        print(f"\nsettings: recipes/toy/grpo.yaml, {a.steps} steps, {a.threads} thread(s); "
              f"GRPOConfig fields that differ: {', '.join(diff) or 'none'}")
        print(f"seconds per step (median of {a.reps}): r1 grpo {t['ours']:.3f}, plain GRPOTrainer {t['plain']:.3f}")
        print(f"end to end (median): r1 grpo {w['ours']:.1f} s, plain {w['plain']:.1f} s")
        print(f"ratio r1 grpo / plain (step time): {t['ours'] / t['plain']:.3f} of the medians, {paired:.3f} median "
              "of the per-rep ratios  (target <= 1.05)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
