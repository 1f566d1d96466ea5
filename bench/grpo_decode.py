"""Stage 2 of the toy with its rollouts from r1cli's decode loop (`decode_loop: true`), against the same
stage with TRL's `model.generate`, in one command.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/grpo_decode.py --model runs/demo/coldstart \
        --data runs/demo/data/rl [--steps 20] [--reps 2] [--work runs/bench_decode]

Each run is `r1 grpo` with recipes/toy/grpo.yaml (8 prompts x 8 completions of <= 96 tokens a step),
--steps steps, no checkpoint; the two alternate rep by rep, so a machine shared with other jobs loads both
alike. Printed: seconds per step (TRL's train_runtime / steps) of each, the median over reps, the ratio, and
each one's training accuracy (the draws differ, so it differs by chance). No assertion: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/toy/grpo.yaml"


def r1(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


def train(model: Path, data: Path, out: Path, steps: int, decode_loop: bool) -> tuple[float, float]:
    """(seconds a step, mean training accuracy) of one `r1 grpo` run."""
    shutil.rmtree(out, ignore_errors=True)
    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", f"decode_loop={str(decode_loop).lower()}"]
    r1("grpo", "--model", model, "--data", data, "--out", out, "--recipe", RECIPE, *[x for s in sets for x in ("--set", s)])
    m = json.loads((out / "r1.json").read_text())["metrics"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = [r["rewards/accuracy/mean"] for r in rows if "rewards/accuracy/mean" in r]
    return m["train_runtime_s"] / steps, sum(acc) / max(1, len(acc))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True, help="a toy cold-start checkpoint (make demo's runs/demo/coldstart)")
    ap.add_argument("--data", type=Path, required=True, help="the toy RL prompts (runs/demo/data/rl)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_decode")
    args = ap.parse_args()

    times: dict[bool, list[float]] = {False: [], True: []}
    accs: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(args.reps):
        for loop in (False, True):
            t, a = train(args.model, args.data, args.work / f"{'decode' if loop else 'generate'}{rep}", args.steps, loop)
            times[loop].append(t)
            accs[loop].append(a)
    print(f"r1 grpo, {args.steps} steps of 64 rows (recipes/toy/grpo.yaml), {args.reps} reps each, alternating")
    for loop, name in ((False, "model.generate (baseline)"), (True, "decode_loop")):
        print(f"  {name:26s} {statistics.median(times[loop]):6.2f} s a step (reps: "
              f"{', '.join(f'{t:.2f}' for t in times[loop])})   training accuracy {statistics.mean(accs[loop]):.3f}")
    print(f"  speed-up: {statistics.median(times[False]) / statistics.median(times[True]):.2f}x a step")


if __name__ == "__main__":
    main()
