"""DAPO's dynamic sampling on the toy: accuracy gained per wall-clock minute of `r1 grpo`, with and
without `dynamic_sampling: true`, from the same cold start, in one command.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/dynamic_sampling.py [--coldstart DIR --data DIR]
        [--steps 60] [--eval-limit 500] [--k 4] [--work runs/bench_ds]

Without --coldstart a toy world is built in --work: `r1 toy data`, `r1 toy base` and `r1 coldstart`
with recipes/toy/coldstart.yaml (the default toy base; --base-set / --coldstart-set KEY=VALUE for smaller ones).
Both RL runs use recipes/toy/grpo.yaml with trl.max_steps=--steps and no checkpoints; the second adds
dynamic_sampling=true (default dynamic_sampling_max_rounds). Each trained model and the cold start are
evaluated with `r1 eval` (recipes/toy/eval.yaml: T 0.6, pass@1 over --k samples) on the first
--eval-limit held-out prompts.

Printed: pass@1 of the cold start and of each run, each run's training minutes (TRL's train_runtime),
the gain in pass@1 points per training minute, and the ratio with / without; plus the share of
zero-spread groups and the extra completions dynamic sampling spent. No assertion: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def r1(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


def cold_start(work: Path, base_set: list[str], cold_set: list[str]) -> tuple[Path, Path]:
    data, base, cold = work / "data", work / "base", work / "coldstart"
    if not data.exists():
        r1("toy", "data", data, "--seed", 0)
    if not base.exists():
        r1("toy", "base", base, "--seed", 0, *[x for s in base_set for x in ("--set", s)])
    if not cold.exists():
        r1("coldstart", "--model", base, "--data", data / "coldstart", "--out", cold,
           "--recipe", ROOT / "recipes/toy/coldstart.yaml", *[x for s in cold_set for x in ("--set", s)])
    return cold, data


def pass1(model: Path, data: Path, out: Path, limit: int, k: int) -> float:
    if not out.exists():
        r1("eval", "--model", model, "--data", data / "eval", "--out", out, "--recipe", ROOT / "recipes/toy/eval.yaml",
           "--limit", limit, "--k", k)
    return json.loads((out / "r1.json").read_text())["metrics"]["pass@1"]


def train(cold: Path, data: Path, out: Path, steps: int, extra: list[str]) -> dict:
    if not out.exists():
        r1("grpo", "--model", cold, "--data", data / "rl", "--out", out, "--recipe", ROOT / "recipes/toy/grpo.yaml",
           "--set", f"trl.max_steps={steps}", "--set", "trl.save_strategy=\"no\"", *extra)
    m = json.loads((out / "r1.json").read_text())
    logs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in logs if "reward" in r]
    ds = [r for r in logs if "dynamic_sampling/zero_std_frac" in r]
    return {"minutes": m["metrics"]["train_runtime_s"] / 60,
            "zero_std": statistics.mean(r["frac_reward_zero_std"] for r in logs) if logs else None,
            "ds_zero_std": statistics.mean(r["dynamic_sampling/zero_std_frac"] for r in ds) if ds else None,
            "extra": statistics.mean(r["dynamic_sampling/extra_generations"] for r in ds) if ds else 0.0,
            "filled": statistics.mean(r["dynamic_sampling/filled_frac"] for r in ds) if ds else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coldstart", type=Path, help="a cold-start checkpoint (default: built in --work)")
    ap.add_argument("--data", type=Path, help="its `r1 toy data` dir (with --coldstart)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_ds")
    ap.add_argument("--base-set", action="append", default=[], help="--set for r1 toy base (building only)")
    ap.add_argument("--coldstart-set", action="append", default=[], help="--set for r1 coldstart (building only)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-limit", type=int, default=500)
    ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    cold, data = (a.coldstart, a.data) if a.coldstart else cold_start(a.work, a.base_set, a.coldstart_set)

    before = pass1(cold, data, a.work / "eval_coldstart", a.eval_limit, a.k)
    runs = {"without": [], "with": ["--set", "dynamic_sampling=true"]}
    rows = {}
    for name, extra in runs.items():
        out = a.work / f"grpo_{name}_{a.steps}"
        stats = train(cold, data, out, a.steps, extra)
        stats["pass1"] = pass1(out, data, a.work / f"eval_{name}_{a.steps}", a.eval_limit, a.k)
        stats["per_min"] = 100 * (stats["pass1"] - before) / stats["minutes"]
        rows[name] = stats

    print(f"\ntoy, {a.steps} GRPO steps of 8 prompts x 8 completions (recipes/toy/grpo.yaml) from the same cold start;"
          f" pass@1 over {a.k} samples on {a.eval_limit} held-out prompts")
    print(f"cold start pass@1 {100 * before:.1f}%")
    print(f"{'dynamic sampling':18} {'pass@1':>8} {'train min':>10} {'points/min':>11} {'zero-std groups':>16} "
          f"{'extra completions/step':>23}")
    for name, s in rows.items():
        zero = s["ds_zero_std"] if s["ds_zero_std"] is not None else s["zero_std"]
        print(f"{name:18} {100 * s['pass1']:7.1f}% {s['minutes']:10.2f} {s['per_min']:11.2f} {100 * zero:15.1f}% "
              f"{s['extra']:23.1f}")
    w, wo = rows["with"], rows["without"]
    ratio = w["per_min"] / wo["per_min"] if wo["per_min"] else float("nan")
    print(f"ratio (pass@1 points gained per training minute, with / without): {ratio:.2f}")
    if w["per_min"] <= 0 or wo["per_min"] <= 0:
        print("note: a run gained no pass@1, so the ratio measures noise, not dynamic sampling (a weak cold start "
              "or too few steps)")
    if w["filled"] is not None:
        print(f"with dynamic sampling, {100 * w['filled']:.1f}% of a batch's groups had a signal after refilling "
              f"(as first sampled: {100 * (1 - w['ds_zero_std']):.1f}%)")


if __name__ == "__main__":
    main()
