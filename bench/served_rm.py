"""`r1 align` with its two reward models in-process against served over HTTP, in one run: training steps
per minute, and the trainer process's peak memory (what serving the RMs is for: at 7B two more full
models on every rank do not fit).

    .venv/bin/python bench/served_rm.py [--steps 4] [--reps 3] [--served-url-helpful URL --served-url-harmless URL]

A toy world is built in a temp dir (`r1 toy data`; `r1 toy base` with the default architecture, briefly
trained; two RMs by `r1 rm` on it, a few steps each: a step's time depends on the shapes, not the weights).
Each run is the real command in a child process (`python -m r1cli align`, recipes/toy/align.yaml with
--steps steps, one thread, no checkpoints) so that its peak RSS is its own (ru_maxrss from os.wait4):
- in-process: --helpful-rm / --harmless-rm are the RM dirs (both loaded into the trainer);
- served: they are URLs; without --served-url-* the RMs are served from this process by the stand-in for
  vLLM's server (tests/fake_rm_server.py: the same checkpoints, scored in-process here), so the RMs'
  memory and compute leave the trainer but share the machine's cores with it. Give the URLs of `make
  serve-rm` servers to measure vLLM itself.
The two alternate rep by rep (after one untimed warm-up each), so a machine shared with other jobs loads
both alike. Printed: steps per minute (TRL's train_runtime; the same clock for both) and peak RSS per rep,
the medians and the ratios; and the served runs' rm_http counts (requests, retries, latency p50/p95).
No assertion: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the stand-in server lives with the tests that check it


def r1_in_process(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


def toy_world(tmp: Path) -> tuple[Path, Path, Path, Path]:
    """(base, data dir, helpful RM, safety RM)."""
    r1_in_process("toy", "data", tmp / "data", "--set", "n_rl=200", "--set", "n_coldstart=64", "--set", "n_eval=8",
                  "--set", "n_general=120", "--set", "n_general_eval=8", "--set", "n_helpful_pairs=64",
                  "--set", "n_safety=64")
    r1_in_process("toy", "base", tmp / "base", "--steps", "20", "--set", "eval_prompts=0", "--set", "attempts=1")
    rm = ["--set", "trl.max_steps=4", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.save_strategy='no'"]
    r1_in_process("rm", "--model", tmp / "base", "--data", tmp / "data" / "helpful_pairs", "--out", tmp / "rm_h", *rm)
    r1_in_process("rm", "--pointwise", "--model", tmp / "base", "--data", tmp / "data" / "safety", "--out",
                  tmp / "rm_s", *rm)
    return tmp / "base", tmp / "data", tmp / "rm_h", tmp / "rm_s"


def align(base: Path, data: Path, helpful, harmless, out: Path, steps: int, sets: list[str]) -> dict:
    """One `r1 align` in a child process: steps per minute, peak RSS (MiB), and the manifest's rm_http counts."""
    fast = ["trl.per_device_train_batch_size=8", "trl.num_generations=4", "trl.max_completion_length=48",
            "trl.logging_steps=1", "trl.save_strategy='no'", "preference_rewards_from=1", "general_fraction=0.5",
            f"trl.max_steps={steps}", *sets]
    cmd = [sys.executable, "-m", "r1cli", "align", "--model", base, "--data", data / "rl", "--data", data / "general",
           "--helpful-rm", helpful, "--harmless-rm", harmless, "--out", out, "--recipe", ROOT / "recipes/toy/align.yaml",
           "--force", *[x for s in fast for x in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"r1 align failed:\n{err.decode()[-2000:]}")
    m = json.loads((out / "r1.json").read_text())
    return {"steps_per_min": 60 * m["counts"]["steps"] / m["metrics"]["train_runtime_s"],
            "peak_mib": usage.ru_maxrss / 1024, "rm_http": m["counts"].get("rm_http", {})}  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="align steps per timed run")
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each side, alternating")
    ap.add_argument("--served-url-helpful", help="a served helpfulness RM (default: a stand-in server here)")
    ap.add_argument("--served-url-harmless", help="a served harmlessness RM (default: a stand-in server here)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override, as `r1 align --set`")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)  # the stand-in servers' scoring: one thread, as the trainer has
    from fake_rm_server import FakeRM

    tmp = Path(tempfile.mkdtemp(prefix="served_rm_"))
    servers = []
    try:
        base, data, rm_h, rm_s = toy_world(tmp)
        if a.served_url_helpful and a.served_url_harmless:
            urls = (a.served_url_helpful, a.served_url_harmless)
        else:
            servers = [FakeRM(rm_h), FakeRM(rm_s)]
            urls = tuple(s.url for s in servers)
        sides = {"in-process": (rm_h, rm_s), "served": urls}
        for name, (h, s) in sides.items():  # warm-up: file caches, the first import of everything
            align(base, data, h, s, tmp / name, 1, a.sets)
        runs = {name: [] for name in sides}
        t0 = time.perf_counter()
        for rep in range(a.reps):
            for name in (list(sides) if rep % 2 == 0 else list(sides)[::-1]):
                r = align(base, data, *sides[name], tmp / name, a.steps, a.sets)
                runs[name].append(r)
                print(f"rep {rep + 1} {name:10s}: {r['steps_per_min']:.2f} steps/min, peak RSS {r['peak_mib']:.0f} MiB",
                      flush=True)
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("steps_per_min", "peak_mib")} for n, rs in runs.items()}
        print(f"\nsettings: recipes/toy/align.yaml, {a.steps} steps, 1 thread, {a.reps} reps "
              f"({time.perf_counter() - t0:.0f} s); served by {'the given URLs' if not servers else 'the stand-in server'}")
        for n in sides:
            print(f"{n:10s}: {med[n]['steps_per_min']:.2f} steps/min, peak RSS {med[n]['peak_mib']:.0f} MiB (medians)")
        srv, loc = med["served"], med["in-process"]
        print(f"served / in-process: steps per minute x{srv['steps_per_min'] / loc['steps_per_min']:.3f}, "
              f"peak RSS x{srv['peak_mib'] / loc['peak_mib']:.3f} ({srv['peak_mib'] - loc['peak_mib']:+.0f} MiB)")
        last = runs["served"][-1]["rm_http"]
        for reward, counts in last.items():
            print(f"served {reward} (last rep): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    finally:
        for srv in servers:
            srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
