"""A chain of `r1` commands started warm (r1cli.warm, as make demo's lanes run them) against the same chain
of plain `r1` processes, in one command.

    PYTHONPATH=$PWD .venv/bin/python bench/warm_start.py [--commands 6] [--reps 3] [--quick]

The chain is --commands runs of `r1 eval` of the toy base on 16 held-out prompts (k 1, 32 new tokens): a
stage short enough that its start-up shows, as the demo's evals, RMs and ablation steps are. The baseline
runs them as a shell would, one `r1` process each, every one importing torch, transformers, datasets and
TRL itself; the other side runs the same shell loop under `python -m r1cli.warm --`, whose warm process
imports them once (its start-up is inside the timing). One thread a command, as in the lanes. Printed:
each side's wall seconds for the whole chain, and the per-rep speed-up (plain / warm).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

import _timing
from _world import ROOT, toy_world


def chain(base, data, out, n: int, warm: bool) -> float:
    r1 = shlex.quote(str(ROOT / ".venv/bin/r1")) if (ROOT / ".venv/bin/r1").exists() else f"{shlex.quote(sys.executable)} -m r1cli"
    cmd = " && ".join(f"{r1} eval --model {shlex.quote(str(base))} --data {shlex.quote(str(data / 'eval'))} "
                      f"--out {shlex.quote(str(out))}/e{i} --limit 16 --k 1 --max-new-tokens 32 --force > /dev/null 2>&1"
                      for i in range(n))
    argv = ["bash", "-c", cmd]
    if warm:
        argv = [sys.executable, "-m", "r1cli.warm", "--", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=6)
    _timing.add_args(ap)
    a = ap.parse_args()
    data, base = toy_world(a.quick)
    n = 2 if a.quick else a.commands
    out = ROOT / "runs/bench_warm"
    print(f"a chain of {n} `r1 eval` commands (16 prompts each), one thread")
    costs = _timing.alternate({"plain r1 processes": lambda: chain(base, data, out / "plain", n, False),
                               "under python -m r1cli.warm": lambda: chain(base, data, out / "warm", n, True)}, a.reps)
    plain, warm = costs["plain r1 processes"], costs["under python -m r1cli.warm"]
    print(f"plain: {_timing.spread(plain, suffix=' s')}")
    print(f"warm:  {_timing.spread(warm, suffix=' s')}")
    print(f"speed-up plain / warm: {_timing.spread(_timing.ratios(plain, warm), suffix='x')}")


if __name__ == "__main__":
    main()
