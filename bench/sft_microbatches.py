"""The toy cold start with each random batch run as length-sorted micro-batches, against the same
batch run whole, in one command.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/sft_microbatches.py --base runs/demo/base \
        --data runs/demo/data [--steps 220] [--work runs/bench_mb]

Both runs are `r1 coldstart` with recipes/toy/coldstart.yaml on --data's coldstart and coldstart_general
sets, --steps optimizer steps of 32 rows each (220 = the recipe's two epochs). The baseline sets
train_sampling_strategy=random, per_device_train_batch_size=32, gradient_accumulation_steps=1: one batch
of 32 padded to its longest row. The other is the recipe as it stands: transformers' batch_rebalance, the
same random batch of 32 run as 4 micro-batches of rows of about one length, the loss normalised over the
whole batch. Printed: each run's training seconds (TRL's train_runtime) and training loss, the padded
tokens a step would run each way, and the ratio. No assertion: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/toy/coldstart.yaml"
WHOLE = ["trl.train_sampling_strategy=random", "trl.per_device_train_batch_size=32", "trl.gradient_accumulation_steps=1"]


def r1(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


def train(base: Path, data: Path, out: Path, steps: int, extra: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    sets = [f"trl.max_steps={steps}", "trl.save_strategy='no'", *extra]
    r1("coldstart", "--model", base, "--data", data / "coldstart", "--data", data / "coldstart_general", "--out", out,
       "--recipe", RECIPE, *[x for s in sets for x in ("--set", s)])
    return json.loads((out / "r1.json").read_text())["metrics"]


def padded_tokens(base: Path, data: Path, micro: int, batch: int = 32, batches: int = 200) -> tuple[float, float]:
    """Tokens a step runs (padding included) over `batches` random batches: (whole batch, `micro`
    length-sorted micro-batches)."""
    from transformers import AutoTokenizer

    from r1cli.stages import sft

    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = sft.mix([sft.load_sft(data / "coldstart"), sft.load_sft(data / "coldstart_general")], None, 42)
    lengths = [len(x) for x in sft.tokenize(rows, tokenizer, 256)[0]["input_ids"]]
    rng, whole, split = random.Random(0), 0, 0
    for _ in range(batches):
        b = sorted(rng.sample(lengths, batch))
        whole += batch * b[-1]
        size = batch // micro
        split += sum(size * b[i + size - 1] for i in range(0, batch, size))
    return whole / batches, split / batches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, required=True, help="a toy base checkpoint (make demo's runs/demo/base)")
    ap.add_argument("--data", type=Path, required=True, help="`r1 toy data` dir with coldstart and coldstart_general")
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_mb")
    args = ap.parse_args()

    whole = train(args.base, args.data, args.work / "whole", args.steps, WHOLE)
    micro = train(args.base, args.data, args.work / "micro", args.steps, [])
    tok_whole, tok_micro = padded_tokens(args.base, args.data, micro=4)
    print(f"r1 coldstart, {args.steps} steps of 32 rows (recipes/toy/coldstart.yaml)")
    for name, m, tok in (("one batch of 32 (baseline)", whole, tok_whole), ("4 length-sorted micro-batches", micro, tok_micro)):
        print(f"  {name:30s} {m['train_runtime_s']:7.1f} s   train loss {m['train_loss']:.5f}   "
              f"{tok:6.0f} tokens a step incl. padding")
    print(f"  speed-up: {whole['train_runtime_s'] / micro['train_runtime_s']:.2f}x "
          f"(padded tokens {tok_whole / tok_micro:.2f}x fewer)")


if __name__ == "__main__":
    main()
