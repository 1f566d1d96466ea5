"""How fast r1 reads a 100k-row JSONL dataset, against `datasets.Dataset.from_json` in the same run.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_data_load.py [--rows 100000] [--reps 3] [--quick]

Each rep runs, in turn: the baseline (Dataset.from_json, a fresh cache dir each time so no rep reads
another's Arrow cache), load_table, load_prompts (load + validate + made-up ids) and the slow path
(a column mixing numbers and strings, read line by line in Python). Printed: each one's seconds and
its ratio to the baseline within each rep (median and min-max).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import _timing


def write_rows(path: Path, n: int, mixed: bool = False) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            a, b, c = rng.randint(1, 40), rng.randint(1, 40), rng.randint(2, 9)
            answer = (a + b) * c
            row = {"prompt": [{"role": "user", "content": f"What is ({a}+{b})*{c}? Think step by step. " * 3}],
                   "answer": str(answer) if (mixed and i % 2) else answer, "domain": "math",
                   "language": "en" if i % 2 else "zh"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    _timing.add_args(ap)
    args = ap.parse_args()
    _timing.check_reps(args.reps)
    rows = 5_000 if args.quick else args.rows
    from datasets import Dataset

    from r1cli.data import load_prompts, load_table

    print(_timing.machine())
    with tempfile.TemporaryDirectory() as tmp:
        plain, mixed = Path(tmp, "plain.jsonl"), Path(tmp, "mixed.jsonl")
        write_rows(plain, rows)
        write_rows(mixed, rows, mixed=True)
        mb = plain.stat().st_size / 1e6
        caches = iter(range(1_000_000))
        base = "Dataset.from_json (baseline)"
        times = _timing.alternate({
            base: lambda: timed(lambda: Dataset.from_json(str(plain), cache_dir=str(Path(tmp, f"cache{next(caches)}")))),
            "load_table": lambda: timed(lambda: load_table(plain)),
            "load_prompts": lambda: timed(lambda: load_prompts(plain)),
            "load_prompts, mixed answer types (slow path)": lambda: timed(lambda: load_prompts(mixed)),
        }, args.reps)
    print(f"\n{rows:,} rows, {mb:.1f} MB of JSONL")
    for name, t in times.items():
        print(f"  {name:46s} {_timing.spread(t, '{:.3f}', ' s')}   "
              f"{_timing.spread(_timing.ratios(t, times[base]), suffix='x')} of the baseline's time")


if __name__ == "__main__":
    main()
