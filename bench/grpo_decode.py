"""Stage 2 of the toy with its rollouts from r1cli's decode loop (`decode_loop: true`), against the same
stage with TRL's `model.generate`, in one command.

    PYTHONPATH=$PWD .venv/bin/python bench/grpo_decode.py [--model DIR --data DIR] [--steps 15] [--reps 3]
        [--threads 1] [--quick]

Without --model/--data the toy cold start is built (or reused, when its fingerprints match) under
runs/bench_world (`r1 toy data`, `r1 toy base --steps 300`, `r1 coldstart`). Each run is `r1 grpo` with
recipes/toy/grpo.yaml (8 prompts x 8 completions of <= 96 tokens a step), --steps steps, no checkpoint,
the recipe's micro_batch_by_length on both sides; only decode_loop differs. The two alternate rep by rep
(A B A B A B). Printed: seconds per step (TRL's train_runtime / steps) of each, the per-rep speed-up's
median and min-max, and each one's training accuracy (the draws differ, so it differs by chance).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import _timing
from _world import ROOT, model_and_rl_data, r1

RECIPE = ROOT / "recipes/toy/grpo.yaml"


def train(model: Path, data: Path, out: Path, steps: int, decode_loop: bool, threads: int, accs: list) -> float:
    """Seconds a step of one `r1 grpo` run; its mean training accuracy goes into `accs`."""
    shutil.rmtree(out, ignore_errors=True)
    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", f"decode_loop={str(decode_loop).lower()}",
            f"trl.logging_steps={min(5, steps)}"]
    r1(["grpo", "--model", model, "--data", data, "--out", out, "--recipe", RECIPE, "--force",
        *[x for s in sets for x in ("--set", s)]], threads=threads)
    m = json.loads((out / "r1.json").read_text())["metrics"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = [r["rewards/accuracy/mean"] for r in rows if "rewards/accuracy/mean" in r]
    accs.append(sum(acc) / max(1, len(acc)))
    return m["train_runtime_s"] / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a toy cold-start checkpoint (default: built under runs/bench_world)")
    ap.add_argument("--data", type=Path, help="the toy RL prompts (with --model)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_decode")
    _timing.add_args(ap)
    a = ap.parse_args()
    _timing.check_reps(a.reps)
    steps = 2 if a.quick else a.steps
    print(_timing.machine())
    model, data = model_and_rl_data(a, coldstart=True)
    accs: dict[bool, list[float]] = {False: [], True: []}
    times = _timing.alternate({
        "model.generate (baseline)": lambda: train(model, data, a.work / "generate", steps, False, a.threads, accs[False]),
        "decode_loop": lambda: train(model, data, a.work / "decode", steps, True, a.threads, accs[True]),
    }, a.reps, unit="s/step")
    print(f"\nr1 grpo, {steps} steps of 64 rows (recipes/toy/grpo.yaml), {a.reps} reps each, alternating, "
          f"{a.threads} thread(s), model {model}")
    for (name, t), acc in zip(times.items(), accs.values()):
        print(f"  {name:26s} {_timing.spread(t, '{:.2f}', ' s/step')}   training accuracy {statistics.mean(acc):.3f}")
    print(f"  speed-up (baseline / decode_loop, per rep): "
          f"{_timing.spread(_timing.ratios(times['model.generate (baseline)'], times['decode_loop']), suffix='x')}")


if __name__ == "__main__":
    main()
