"""Peak RSS of `r1 reject-sample` on 100k toy prompts against 1k (target: ratio <= 1.5x):
the stage streams chunks, so memory must not grow with the number of prompts.

    .venv/bin/python bench/reject_sample_memory.py [--model runs/demo/base] [--large 100000] [--small 1000]

Each size runs the real command in a child process (`python -m r1cli reject-sample`, the toy
recipe with n=1 and max_new_tokens=4 so 100k prompts take minutes, not hours); its peak RSS
is the child's ru_maxrss from os.wait4. Prints both, the ratio, and the wall times.

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
           "--recipe", str(ROOT / "recipes/toy/reject_sample.yaml"), "--set", "n=1",
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
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--max-new-tokens", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        results = {}
        for n in (args.small, args.large):
            data = prompts(tmp / f"prompts{n}", n)
            results[n] = peak_rss(model, data, tmp / f"rs{n}", args)
            print(f"  {n:7d} prompts: peak RSS {results[n][0]:7.1f} MB in {results[n][1]:6.1f} s", flush=True)
    small, large = results[args.small][0], results[args.large][0]
    print(f"peak RSS ratio {args.large} vs {args.small} prompts: {large / small:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
