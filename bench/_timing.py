"""What every bench shares: both sides run in one command, in alternating repetitions (A B A B A B), so
a machine shared with other jobs loads each side alike; the ratio is taken within each repetition
(its sides ran back to back) and printed as its median and min-max.

    results = alternate({"ours": run_ours, "baseline": run_baseline}, reps=3)   # each fn -> seconds
    print(spread(ratios(results["baseline"], results["ours"])))              # 2.10x (1.95-2.31, 3 reps)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from typing import Callable

MIN_REPS = 3


def add_args(ap: argparse.ArgumentParser, reps: int = MIN_REPS) -> None:
    """--reps and --quick, the two flags every bench takes."""
    ap.add_argument("--reps", type=int, default=reps, help=f"repetitions of each side, alternating (>= {MIN_REPS})")
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the bench runs, not a figure to quote")


def check_reps(reps: int) -> None:
    if reps < MIN_REPS:
        raise SystemExit(f"--reps {reps}: at least {MIN_REPS}, or the spread of the ratio says nothing")


def alternate(sides: dict[str, Callable[[], float]], reps: int, unit: str = "s",
              log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Call every side once per repetition, in the order given, `reps` times; each call returns its
    cost (seconds, or seconds per unit of work: lower is better). Returns each side's costs, rep by rep."""
    check_reps(reps)
    log = log or (lambda line: print(line, flush=True))
    out: dict[str, list[float]] = {name: [] for name in sides}
    for rep in range(reps):
        for name, fn in sides.items():
            cost = fn()
            out[name].append(cost)
            log(f"  rep {rep + 1}/{reps}  {name:40s} {cost:10.4f} {unit}  (load {os.getloadavg()[0]:.1f})")
    return out


def ratios(num: list[float], den: list[float]) -> list[float]:
    """Per-repetition ratios num[i] / den[i] (both measured within the same repetition)."""
    return [a / b if b else float("nan") for a, b in zip(num, den)]


def spread(xs: list[float], fmt: str = "{:.2f}", suffix: str = "") -> str:
    """'median (min-max, n reps)'."""
    f = lambda v: fmt.format(v) + suffix  # noqa: E731
    return f"{f(statistics.median(xs))} (min {f(min(xs))}, max {f(max(xs))}; {len(xs)} reps)"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def machine() -> str:
    """The CPU model and the load average, for the figure's line in bench/README.md."""
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), model)
    except OSError:
        pass
    return (f"{time.strftime('%Y-%m-%d')}, {model}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f} at start")
