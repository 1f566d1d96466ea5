"""Peak RSS of `r1 reject-sample` on 100k toy prompts against 1k (target: ratio <= 1.5x):
the stage streams chunks, so memory must not grow with the number of prompts.

    PYTHONPATH=$PWD .venv/bin/python bench/reject_sample_memory.py [--model DIR] [--large 100000] [--small 1000]
        [--reps 3] [--quick]

The two sizes alternate rep by rep (small, large, small, large, ...); each runs the real command in a
child process (`python -m r1cli reject-sample`, the toy
recipe with n=1 and max_new_tokens=4 so 100k prompts take minutes, not hours); its peak RSS
is the child's ru_maxrss from os.wait4. Prints both (median and min-max over reps), the per-rep
ratio, and the wall times.

Without --model the sampler is a tiny random Llama (hidden 32, one layer) with the toy
tokenizer: what must not grow with the prompts is the stage's memory (reading, chunks,
counts), and a small model keeps 100k prompts to a few minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _timing

ROOT = Path(__file__).resolve().parents[1]


def prompts(path: Path, n: int) -> Path:
    """n toy RL prompts as a dataset dir (what `r1 toy data` writes, only more of them)."""
    from datasets import Dataset

    from r1cli.toy import problems as toy

    rows = toy.prompt_rows(random.Random(f"mem:{n}"), toy.problems(False), n, 0.5, "mem", distinct=False)
    Dataset.from_list(rows).save_to_disk(str(path))
    return path


def tiny_model(path: Path) -> Path:
    """A random 1-layer Llama with the toy world's character tokenizer (an ordinary HF dir)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from r1cli.toy.base import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def peak_rss(model: Path, data: Path, out: Path, args) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one `r1 reject-sample` child process."""
    cmd = [sys.executable, "-m", "r1cli", "reject-sample", "--model", str(model), "--data", str(data), "--out", str(out),
           "--force", "--recipe", str(ROOT / "recipes/toy/reject_sample.yaml"), "--set", "n=1",
           "--set", f"sampling.max_new_tokens={args.max_new_tokens}", "--set", "sampling.batch_size=256",
           "--set", f"chunk_size={args.chunk_size}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"r1 reject-sample failed on {data}:\n{err.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--max-new-tokens", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    _timing.add_args(ap)
    args = ap.parse_args()
    _timing.check_reps(args.reps)
    if args.quick:
        args.small, args.large, args.chunk_size = 200, 2_000, 256
    print(_timing.machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        data = {n: prompts(tmp / f"prompts{n}", n) for n in (args.small, args.large)}
        walls: dict[int, list[float]] = {args.small: [], args.large: []}

        def size(n: int):
            def go() -> float:
                mb, seconds = peak_rss(model, data[n], tmp / f"rs{n}", args)
                walls[n].append(seconds)
                return mb
            return go

        rss = _timing.alternate({f"{args.small} prompts": size(args.small), f"{args.large} prompts": size(args.large)},
                                args.reps, unit="MB peak RSS")
    small, large = rss[f"{args.small} prompts"], rss[f"{args.large} prompts"]
    for n, mb in ((args.small, small), (args.large, large)):
        print(f"  {n:7d} prompts: peak RSS {_timing.spread(mb, '{:.1f}', ' MB')} in "
              f"{_timing.spread(walls[n], '{:.1f}', ' s')}")
    print(f"peak RSS ratio {args.large} vs {args.small} prompts: {_timing.spread(_timing.ratios(large, small), suffix='x')}"
          " (target <= 1.5x)")


if __name__ == "__main__":
    main()
