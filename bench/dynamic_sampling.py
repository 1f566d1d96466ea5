"""DAPO's dynamic sampling on the toy: pass@1 points gained per training minute of `r1 grpo`, with and
without `dynamic_sampling: true`, from the same cold start, over several seeds, in one command.

    PYTHONPATH=$PWD .venv/bin/python bench/dynamic_sampling.py [--coldstart DIR --data DIR] [--seeds 3]
        [--steps 15] [--eval-limit 200] [--k 2] [--threads 1] [--quick]

Without --coldstart the toy world is built (or reused, only when its fingerprints match) under
runs/bench_world: `r1 toy data`, `r1 toy base --steps 300`, `r1 coldstart` (recipes/toy/coldstart.yaml)
and the cold start's `r1 eval`. The RL runs and their evals are the measurement: they are run every time.
Each RL run is recipes/toy/grpo.yaml with trl.max_steps=--steps, no checkpoint and `seed` set; the
second of each pair adds dynamic_sampling=true (default dynamic_sampling_max_rounds). The pairs run
seed by seed, without then with (A B A B A B). Each trained model is evaluated with `r1 eval`
(recipes/toy/eval.yaml: T 0.6, pass@1 over --k samples) on the first --eval-limit held-out prompts.

Printed: each run's pass@1, training minutes (TRL's train_runtime), points gained per training minute,
the share of zero-spread groups and the extra completions dynamic sampling spent; then per side the
median and min-max over seeds, and the with / without ratio of points per minute, per seed (median,
min-max). A gain at or below zero makes that seed's ratio meaningless, and the bench says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import _timing
from _world import ROOT, World, r1, toy_coldstart


def pass1(out: Path) -> float:
    return json.loads((out / "r1.json").read_text())["metrics"]["pass@1"]


def train(cold: Path, data: Path, out: Path, a, seed: int, extra: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    r1(["grpo", "--model", cold, "--data", data / "rl", "--out", out, "--recipe", ROOT / "recipes/toy/grpo.yaml",
        "--set", f"trl.max_steps={a.steps}", "--set", "trl.save_strategy='no'", "--set", f"seed={seed}",
        "--set", f"trl.logging_steps={min(5, a.steps)}", *extra, "--force"], threads=a.threads)
    m = json.loads((out / "r1.json").read_text())
    logs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in logs if "reward" in r]
    ds = [r for r in logs if "dynamic_sampling/zero_std_frac" in r]
    ev = out.with_name(out.name + "_eval")
    r1(["eval", "--model", out, "--data", data / "eval", "--out", ev, "--recipe", ROOT / "recipes/toy/eval.yaml",
        "--limit", a.eval_limit, "--k", a.k, "--force"], threads=a.threads)
    return {"minutes": m["metrics"]["train_runtime_s"] / 60, "pass1": pass1(ev),
            "zero_std": statistics.mean(r["frac_reward_zero_std"] for r in logs) if logs else float("nan"),
            "ds_zero_std": statistics.mean(r["dynamic_sampling/zero_std_frac"] for r in ds) if ds else None,
            "extra": statistics.mean(r["dynamic_sampling/extra_generations"] for r in ds) if ds else 0.0,
            "filled": statistics.mean(r["dynamic_sampling/filled_frac"] for r in ds) if ds else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coldstart", type=Path, help="a cold-start checkpoint (default: built under runs/bench_world)")
    ap.add_argument("--data", type=Path, help="its `r1 toy data` dir (with --coldstart)")
    ap.add_argument("--seeds", type=int, default=3, help="RL seeds, one pair of runs each (>= 3)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--eval-limit", type=int, default=200)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_ds")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs, not a figure to quote")
    a = ap.parse_args()
    _timing.check_reps(a.seeds)
    if a.quick:
        a.steps, a.eval_limit, a.k = 2, 8, 1
    print(_timing.machine())
    if a.coldstart:
        cold, data = a.coldstart, a.data
        world = World(a.work, threads=2)
    else:
        data, cold = toy_coldstart(a.quick)
        world = World(cold.parent, threads=2)
    eval_cmd = ["--data", data / "eval", "--recipe", ROOT / "recipes/toy/eval.yaml", "--limit", a.eval_limit, "--k", a.k]
    before = pass1(world.build(f"eval_coldstart_{a.eval_limit}x{a.k}_{cold.name}",
                               ["eval", "--model", cold, "--out", "{out}", *eval_cmd]))

    rows: dict[str, list[dict]] = {"without": [], "with": []}
    seeds = iter(range(a.seeds))
    current = {}

    def run(name: str, extra: list[str]):
        def go() -> float:
            if name == "without":
                current["seed"] = next(seeds)
            s = current["seed"]
            row = train(cold, data, a.work / f"grpo_{name}_seed{s}", a, s, extra)
            row["seed"] = s
            row["per_min"] = 100 * (row["pass1"] - before) / row["minutes"]
            rows[name].append(row)
            return row["minutes"]
        return go

    _timing.alternate({"without": run("without", []), "with": run("with", ["--set", "dynamic_sampling=true"])},
                      a.seeds, unit="train min")

    print(f"\ntoy, {a.steps} GRPO steps of 8 prompts x 8 completions (recipes/toy/grpo.yaml) from the cold start "
          f"{cold}; pass@1 over {a.k} samples on {a.eval_limit} held-out prompts; {a.threads} thread(s)")
    print(f"cold start pass@1 {100 * before:.1f}%")
    print(f"{'dynamic sampling':17} {'seed':>4} {'pass@1':>8} {'train min':>10} {'points/min':>11} "
          f"{'zero-std groups':>16} {'extra completions/step':>23}")
    for name, rs in rows.items():
        for s in rs:
            zero = s["ds_zero_std"] if s["ds_zero_std"] is not None else s["zero_std"]
            print(f"{name:17} {s['seed']:4d} {100 * s['pass1']:7.1f}% {s['minutes']:10.2f} {s['per_min']:11.2f} "
                  f"{100 * zero:15.1f}% {s['extra']:23.1f}")
    for name, rs in rows.items():
        print(f"{name:8s}: pass@1 {_timing.spread([100 * s['pass1'] for s in rs], '{:.1f}', '%')}; "
              f"points/min {_timing.spread([s['per_min'] for s in rs])}; "
              f"train minutes {_timing.spread([s['minutes'] for s in rs])}")
    w, wo = rows["with"], rows["without"]
    # a side that gained nothing makes its seed's ratio 0, infinite or undefined: such seeds are left out
    ok = [(x, y) for x, y in zip(w, wo) if x["per_min"] > 0 and y["per_min"] > 0]
    per_seed = ", ".join(f"seed {x['seed']} {x['per_min'] / y['per_min']:.2f}" if (x, y) in ok else
                         f"seed {x['seed']} undefined" for x, y in zip(w, wo))
    print(f"ratio (pass@1 points gained per training minute, with / without): {per_seed}")
    if ok:
        print(f"  over the {len(ok)} seed(s) where both sides gained: "
              f"{_timing.spread([x['per_min'] / y['per_min'] for x, y in ok])}")
    bad = [s["seed"] for s in w + wo if s["per_min"] <= 0]
    if bad:
        print(f"note: seed(s) {sorted(set(bad))} gained no pass@1 on one side, so their ratio measures noise, "
              "not dynamic sampling (a weak cold start or too few steps)")
    filled = [s["filled"] for s in w if s["filled"] is not None]
    if filled:
        print(f"with dynamic sampling, {100 * statistics.mean(filled):.1f}% of a batch's groups had a signal after "
              f"refilling (as first sampled: {100 * (1 - statistics.mean(s['ds_zero_std'] for s in w)):.1f}%)")


if __name__ == "__main__":
    main()
