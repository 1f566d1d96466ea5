"""The toy checkpoints and datasets a bench needs, built with the `r1` CLI under runs/ and reused only when
nothing they were made from has changed: the same command, the same r1cli source, every input the
manifest (r1.json) records still at its fingerprint, and the dir's own files unchanged since it was
built. Anything else is built again; either way the bench prints which it did.

    world = World(ROOT / "runs/bench_world")
    data = world.build("data", ["toy", "data", "{out}", "--seed", "0"])
    base = world.build("base", ["toy", "base", "{out}", "--steps", "300", "--set", "attempts=1"])
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from r1cli.artifacts import fingerprint, read_manifest

ROOT = Path(__file__).resolve().parents[1]


def r1(args: list, threads: int | None = None, quiet: bool = True) -> None:
    """`python -m r1cli ARGS` in a child process (the command a user runs); its output is shown only if it fails."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "r1cli", *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = (done.stderr or "")[-3000:] + (done.stdout or "")[-1000:] if quiet else ""
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{tail}")


def content_hash(d: Path) -> str:
    """The dir's files, manifests aside. (artifacts.fingerprint_files cannot be recomputed after the fact:
    it hides the manifest as a file beside the others, which a finished dir's hash then includes.)"""
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file() and p.name != "r1.json"):
        h.update(f.relative_to(d).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:32]


def source_hash() -> str:
    """r1cli's Python source: a build from other code is not reused."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "r1cli").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


class World:
    def __init__(self, work: Path, threads: int | None = None):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.ledger = self.work / "bench_builds.json"  # outside every built dir, so no fingerprint includes it
        self.threads = threads

    def _read(self) -> dict:
        return json.loads(self.ledger.read_text()) if self.ledger.exists() else {}

    def why_not_reuse(self, out: Path, cmd: list[str]) -> str | None:
        """None when `out` may be reused for `cmd`, else the reason it may not."""
        entry = self._read().get(out.name)
        m = read_manifest(out) if out.exists() else None
        if m is None:
            return "not built yet"
        if entry is None:
            return "built by something else than this bench (no record of its command)"
        if entry["cmd"] != cmd:
            return "built with another command"
        if entry["source"] != source_hash():
            return "r1cli's source has changed since"
        if m.get("fingerprint") != entry["fingerprint"] or content_hash(out) != entry["content"]:
            return "its files changed since it was built"
        for inp in m.get("inputs", []):
            if not Path(inp["path"]).exists() or fingerprint(inp["path"]) != inp["fingerprint"]:
                return f"its input {inp['path']} changed since"
        return None

    def build(self, name: str, cmd: list, log=print) -> Path:
        """Run `r1 CMD` ('{out}' in CMD is replaced by the dir) unless a matching build exists."""
        out = self.work / name
        cmd = [str(c).replace("{out}", str(out)) for c in cmd]
        why = self.why_not_reuse(out, cmd)
        if why is None:
            log(f"reusing {out}: same command, same r1cli source, its inputs at their recorded fingerprints, its files "
                "unchanged since it was built")
            return out
        log(f"building {out} ({why}): r1 {' '.join(cmd)}")
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        r1([*cmd, "--force"], threads=self.threads)
        ledger = self._read()
        ledger[name] = {"cmd": cmd, "source": source_hash(), "fingerprint": read_manifest(out)["fingerprint"],
                        "content": content_hash(out),
                        "seconds": round(time.perf_counter() - t, 1)}
        self.ledger.write_text(json.dumps(ledger, indent=1))
        return out


def toy_world(quick: bool, log=print) -> tuple[Path, Path]:
    """(data dir, base model dir) under runs/: the toy world's default base briefly trained (300 steps:
    it ends its answers, so samples differ in length as real ones do), or with --quick a 2-layer one of
    30 steps (make smoke's settings) that only checks a bench runs."""
    if quick:
        world = World(ROOT / "runs/bench_world_quick", threads=2)
        data = world.build("data", ["toy", "data", "{out}", "--seed", "0", "--set", "n_rl=64", "--set", "n_coldstart=64",
                                    "--set", "n_eval=16", "--set", "n_general=32", "--set", "n_general_eval=8",
                                    "--set", "n_helpful_pairs=40", "--set", "n_safety=40"], log)
        base = world.build("base", ["toy", "base", "{out}", "--seed", "0", "--steps", "30", "--set", "num_layers=2",
                                    "--set", "batch_size=4", "--set", "max_length=128", "--set", "eval_prompts=0",
                                    "--set", "attempts=1"], log)
    else:
        world = World(ROOT / "runs/bench_world", threads=2)
        data = world.build("data", ["toy", "data", "{out}", "--seed", "0"], log)
        # one start: a 300-step base copies little, and a bench needs its shapes, not its skills
        base = world.build("base", ["toy", "base", "{out}", "--seed", "0", "--steps", "300", "--set", "eval_prompts=0",
                                    "--set", "attempts=1"], log)
    return data, base


def toy_coldstart(quick: bool, log=print) -> tuple[Path, Path]:
    """(data dir, cold-start checkpoint): toy_world's base after `r1 coldstart` with recipes/toy/coldstart.yaml
    (4 steps with --quick)."""
    data, base = toy_world(quick, log)
    world = World(base.parent, threads=2)
    cold = world.build("coldstart", ["coldstart", "--model", base, "--data", data / "coldstart", "--data",
                                     data / "coldstart_general", "--out", "{out}",
                                     "--recipe", ROOT / "recipes/toy/coldstart.yaml",
                                     *(["--set", "trl.max_steps=4"] if quick else [])], log)
    return data, cold


def model_and_rl_data(a, coldstart: bool = False) -> tuple[Path, Path]:
    """(the checkpoint, its RL prompts) of a bench: --model and --data when both are given, else the toy
    world's base (or, with `coldstart`, its cold start) and its rl split."""
    if a.model and a.data:
        return a.model, a.data
    data, model = (toy_coldstart if coldstart else toy_world)(a.quick)
    return model, data / "rl"
