"""The toy cold start with each random batch run as length-sorted micro-batches, against the same
batch run whole, in one command.

    PYTHONPATH=$PWD .venv/bin/python bench/sft_microbatches.py [--base DIR --data DIR] [--steps 60] [--reps 3]
        [--threads 1] [--quick]

Without --base/--data the toy world is built (or reused, when its fingerprints match) under
runs/bench_world. Both runs are `r1 coldstart` with recipes/toy/coldstart.yaml on --data's coldstart and
coldstart_general sets, --steps optimizer steps of 32 rows each (220 = the recipe's two epochs). The
baseline sets train_sampling_strategy=random, per_device_train_batch_size=32,
gradient_accumulation_steps=1: one batch of 32 padded to its longest row. The other is the recipe as it
stands: transformers' batch_rebalance, the same random batch of 32 run as 4 micro-batches of rows of
about one length, the loss normalised over the whole batch. The two alternate rep by rep (A B A B A B).
Printed: each run's training seconds (TRL's train_runtime, median and min-max) and training loss, the
padded tokens a step would run each way, and the per-rep speed-up.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import _timing
from _world import ROOT, r1, toy_world

RECIPE = ROOT / "recipes/toy/coldstart.yaml"
WHOLE = ["trl.train_sampling_strategy=random", "trl.per_device_train_batch_size=32", "trl.gradient_accumulation_steps=1"]


def train(base: Path, data: Path, out: Path, steps: int, extra: list[str], threads: int, losses: list) -> float:
    shutil.rmtree(out, ignore_errors=True)
    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", *extra]
    r1(["coldstart", "--model", base, "--data", data / "coldstart", "--data", data / "coldstart_general", "--out", out,
        "--recipe", RECIPE, "--force", *[x for s in sets for x in ("--set", s)]], threads=threads)
    m = json.loads((out / "r1.json").read_text())["metrics"]
    losses.append(m["train_loss"])
    return m["train_runtime_s"]


def padded_tokens(base: Path, data: Path, micro: int, batch: int = 32, batches: int = 200) -> tuple[float, float]:
    """Tokens a step runs (padding included) over `batches` random batches: (whole batch, `micro`
    length-sorted micro-batches); each row's length is its chat-templated messages, cut at 256 tokens."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    rows = [r for split in ("coldstart", "coldstart_general") for r in load_from_disk(str(data / split))["messages"]]
    lengths = [min(256, len(tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"])) for m in rows]
    rng, whole, split = random.Random(0), 0, 0
    for _ in range(batches):
        b = sorted(rng.sample(lengths, batch))
        whole += batch * b[-1]
        size = batch // micro
        split += sum(size * b[i + size - 1] for i in range(0, batch, size))
    return whole / batches, split / batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="a toy base checkpoint (default: built under runs/bench_world)")
    ap.add_argument("--data", type=Path, help="`r1 toy data` dir with coldstart and coldstart_general (with --base)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_mb")
    _timing.add_args(ap)
    a = ap.parse_args()
    _timing.check_reps(a.reps)
    steps = 2 if a.quick else a.steps
    print(_timing.machine())
    base, data = (a.base, a.data) if a.base and a.data else toy_world(a.quick)[::-1]
    losses: dict[str, list[float]] = {"whole": [], "micro": []}
    times = _timing.alternate({
        "one batch of 32 (baseline)": lambda: train(base, data, a.work / "whole", steps, WHOLE, a.threads,
                                                    losses["whole"]),
        "4 length-sorted micro-batches": lambda: train(base, data, a.work / "micro", steps, [], a.threads,
                                                       losses["micro"]),
    }, a.reps)
    tok_whole, tok_micro = padded_tokens(base, data, micro=4)
    print(f"\nr1 coldstart, {steps} steps of 32 rows (recipes/toy/coldstart.yaml), {a.threads} thread(s), base {base}")
    for (name, t), loss, tok in zip(times.items(), losses.values(), (tok_whole, tok_micro)):
        print(f"  {name:30s} {_timing.spread(t, '{:.1f}', ' s')}   train loss {loss[-1]:.5f}   "
              f"{tok:6.0f} tokens a step incl. padding")
    r = _timing.ratios(times["one batch of 32 (baseline)"], times["4 length-sorted micro-batches"])
    print(f"  speed-up (per rep): {_timing.spread(r, suffix='x')} (padded tokens {tok_whole / tok_micro:.2f}x fewer)")


if __name__ == "__main__":
    main()
