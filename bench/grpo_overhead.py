"""Step time of `r1 grpo` against a plain TRL GRPOTrainer script with the same model, data, rewards and
GRPOConfig, in one command. Target: ratio <= 1.05.

    PYTHONPATH=$PWD .venv/bin/python bench/grpo_overhead.py [--steps 8] [--reps 3] [--threads 1]
        [--model DIR --data DIR] [--set KEY=VALUE] [--quick]

Without --model/--data the toy world is built (or reused, when its fingerprints match) under
runs/bench_world: `r1 toy data` and `r1 toy base --steps 300` (a step's time depends on the shapes
and on the completions' lengths, so a base that writes answers, not noise).

- ours: `r1 grpo --recipe recipes/toy/grpo.yaml` in a child process, with decode_loop and
  micro_batch_by_length off: both replace TRL code (rollouts, the loss's batching) and are measured
  on their own by bench/grpo_decode.py; here the question is what the stage adds around TRL (checks,
  reward wrappers that log samples, telemetry, the manifest and OUT).
- plain: a child process running GRPOConfig(...) + GRPOTrainer(...).train(), the reward functions of
  r1cli's registry, the GRPOConfig built from the same values a user would copy: the recipe's `trl:`
  section, the values of its algorithm preset (as the manifest lists them), the CPU settings and
  r1cli's logging defaults.
Every GRPOConfig field of the two runs is compared (ours: OUT/training_args.bin); the bench FAILS
(exit 1, naming the fields) when any differs other than output and logging paths, so the ratio always
compares one algorithm with itself. An untimed 1-step run of each side comes first (and is checked).
Printed: seconds per step (TRL's train_runtime / steps, the same clock on both sides) per rep, the
per-rep ratio's median and min-max, and each side's end-to-end wall time (process start to exit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _timing
import yaml
from _world import ROOT, model_and_rl_data, r1

RECIPE = ROOT / "recipes/toy/grpo.yaml"
# fields that only name places; none changes what a step computes
PATHS = {"output_dir", "logging_dir", "run_name"}
# what `r1 grpo` sets on a CPU and for its logging (r1cli's defaults); a plain script sets the same
CPU = {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False,
       "ddp_find_unused_parameters": False}
LOGGING = {"report_to": [], "disable_tqdm": True, "save_total_limit": 1, "logging_steps": 5}


# --- the two sides ---------------------------------------------------------------------------------------


def ours(model: Path, data: Path, out: Path, steps: int, sets: list[str], threads: int) -> dict:
    import torch

    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", "decode_loop=false", "micro_batch_by_length=false", *sets]
    t = time.perf_counter()
    r1(["grpo", "--model", model, "--data", data, "--out", out, "--recipe", RECIPE, "--force",
        *[x for s in sets for x in ("--set", s)]], threads=threads)
    wall = time.perf_counter() - t
    m = json.loads((out / "r1.json").read_text())
    args = torch.load(out / "training_args.bin", weights_only=False).to_dict()
    return {"step": m["metrics"]["train_runtime_s"] / m["counts"]["steps"], "wall": wall, "args": args, "manifest": m}


def plain_config(recipe: dict, preset: dict, steps: int, sets: list[str]) -> dict:
    """The GRPOConfig keywords of the plain script: r1cli's logging defaults, the CPU settings, the preset's
    values, the recipe's trl section, then the bench's own (and the user's --set trl.* ones)."""
    trl = {**LOGGING, "seed": recipe["seed"], "data_seed": recipe["seed"], **CPU, **preset, **recipe["trl"],
           "max_steps": steps, "save_strategy": "no"}
    for s in sets:
        key, value = s.split("=", 1)
        if key.startswith("trl."):
            trl[key[4:]] = yaml.safe_load(value)
    trl["reward_weights"] = [float(w) for w in recipe["rewards"].values()]
    return trl


def plain(model: Path, data: Path, out: Path, recipe: dict, config: dict, threads: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    job = {"model": str(model), "data": str(data), "out": str(out), "config": config, "rewards": recipe["rewards"],
           "template": recipe.get("template", "r1"), "seed": recipe["seed"]}
    (out / "job.json").write_text(json.dumps(job))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--plain-child", str(out / "job.json")], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"the plain GRPOTrainer script failed:\n{done.stderr[-3000:]}")
    res = json.loads((out / "result.json").read_text())
    return {"step": res["train_runtime"] / res["steps"], "wall": wall, "args": res["args"]}


def plain_child(job_path: str) -> None:
    """The plain script itself: what a user writes around TRL."""
    import torch
    import transformers
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1cli.rewards import resolve_rewards

    job = json.loads(Path(job_path).read_text())
    transformers.utils.logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    ds = load_from_disk(job["data"])
    funcs = [fn for _, fn, _ in resolve_rewards(job["rewards"], prefilled_think=False, template=job["template"])]
    args = GRPOConfig(output_dir=job["out"] + "/checkpoints", **job["config"])
    torch.manual_seed(job["seed"])
    lm = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)
    trainer = GRPOTrainer(model=lm, reward_funcs=funcs, args=args, train_dataset=ds, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    Path(job["out"], "result.json").write_text(json.dumps(
        {"train_runtime": result.metrics["train_runtime"], "steps": trainer.state.global_step,
         "args": args.to_dict()}, default=str))


def differing(a: dict, b: dict) -> dict:
    """{field: (ours, plain)} for every GRPOConfig field that differs, paths aside."""
    a, b = (json.loads(json.dumps(d, default=str)) for d in (a, b))
    return {k: (a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b))
            if k not in PATHS and a.get(k, "<absent>") != b.get(k, "<absent>")}


def check_same(o: dict, p: dict, when: str) -> None:
    if o["manifest"]["metrics"].get("prefilled_think"):  # the plain side's rewards assume completions open <think>
        raise SystemExit(f"FAIL ({when}): r1 grpo detected a pre-filled <think>; the plain side's rewards do not")
    diff = differing(o["args"], p["args"])
    if diff:
        for k, (x, y) in diff.items():
            print(f"  GRPOConfig.{k}: r1 grpo {x!r}, plain {y!r}")
        raise SystemExit(f"FAIL ({when}): the two sides ran different GRPOConfigs ({', '.join(diff)}): "
                         "the ratio would compare two algorithms")


# --- the run ---------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--plain-child":
        return plain_child(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="GRPO steps per timed run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each side (the machine is shared)")
    ap.add_argument("--model", type=Path, help="model dir (default: the toy base under runs/bench_world)")
    ap.add_argument("--data", type=Path, help="RL prompts dir (default: the toy world's rl split)")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="recipe override for both sides (`trl.KEY=VALUE` also goes into the plain GRPOConfig)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_grpo_overhead")
    _timing.add_args(ap)
    a = ap.parse_args()
    _timing.check_reps(a.reps)
    steps = 2 if a.quick else a.steps
    print(_timing.machine())
    model, data = model_and_rl_data(a)
    recipe = yaml.safe_load(RECIPE.read_text())

    # untimed: one step of each (file caches, and the GRPOConfig check before the long runs)
    warm = ours(model, data, a.work / "ours", 1, a.sets, a.threads)
    preset = warm["manifest"]["config"].get("algorithm_preset", {}).get("values", {})
    check_same(warm, plain(model, data, a.work / "plain", recipe, plain_config(recipe, preset, 1, a.sets), a.threads),
               "warm-up")
    config = plain_config(recipe, preset, steps, a.sets)
    runs: dict[str, list[dict]] = {"r1 grpo": [], "plain GRPOTrainer": []}

    def side(name, fn):
        def go():
            runs[name].append(fn())
            return runs[name][-1]["step"]
        return go

    times = _timing.alternate({
        "r1 grpo": side("r1 grpo", lambda: ours(model, data, a.work / "ours", steps, a.sets, a.threads)),
        "plain GRPOTrainer": side("plain GRPOTrainer", lambda: plain(model, data, a.work / "plain", recipe, config,
                                                                      a.threads)),
    }, a.reps, unit="s/step")
    for o, p in zip(runs["r1 grpo"], runs["plain GRPOTrainer"]):
        check_same(o, p, "timed run")
    ratio = _timing.ratios(times["r1 grpo"], times["plain GRPOTrainer"])
    print(f"\n{RECIPE.relative_to(ROOT)} with decode_loop and micro_batch_by_length off, {steps} steps, "
          f"{a.threads} thread(s), model {model}; every GRPOConfig field the same on both sides (paths aside)")
    for name in runs:
        print(f"  {name:18s} {_timing.spread(times[name], '{:.3f}', ' s/step')};  end to end "
              f"{_timing.spread([r['wall'] for r in runs[name]], '{:.1f}', ' s')}")
    print(f"ratio r1 grpo / plain GRPOTrainer (step time): {_timing.spread(ratio, '{:.3f}')}  (target <= 1.05)")


if __name__ == "__main__":
    main()
