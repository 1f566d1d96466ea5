"""How fast r1 reads a 100k-row JSONL dataset, against `datasets.Dataset.from_json` in the same run.

    .venv/bin/python bench/bench_data_load.py [--rows 100000]

Prints seconds for load_table, load_prompts (load + validate + made-up ids), the slow path
(a column mixing numbers and strings, read line by line in Python) and the baseline, and
each one's ratio to the baseline. No assertion: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    from datasets import Dataset

    from r1cli.data import load_prompts, load_table

    with tempfile.TemporaryDirectory() as tmp:
        plain, mixed = Path(tmp, "plain.jsonl"), Path(tmp, "mixed.jsonl")
        write_rows(plain, args.rows)
        write_rows(mixed, args.rows, mixed=True)
        mb = plain.stat().st_size / 1e6
        base = timed(lambda: Dataset.from_json(str(plain), cache_dir=str(Path(tmp, "cache"))))
        results = {
            "Dataset.from_json (baseline)": base,
            "load_table": timed(lambda: load_table(plain)),
            "load_prompts": timed(lambda: load_prompts(plain)),
            "load_prompts, mixed answer types (slow path)": timed(lambda: load_prompts(mixed)),
        }
    print(f"{args.rows:,} rows, {mb:.1f} MB of JSONL")
    for name, s in results.items():
        print(f"  {name:46s} {s:7.3f} s   {s / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
