"""Samples/s of `r1 reject-sample` against a naive loop calling `model.generate` once per prompt,
on the same toy model and prompts, in one run (target: >= 5x).

    .venv/bin/python bench/reject_sample.py [--model runs/demo/base] [--data runs/demo/data/rl] [--prompts 128] [--n 4]

Without --model/--data it uses runs/demo/{base,data/rl} when they exist, else builds a toy
world in a temp dir first (`r1 toy data` + `r1 toy base`, a few minutes). The stage runs
whole with the toy recipe (sampling, filters, verification, chunk files, the dataset dir);
its rate is reported twice: over its chunks (the manifest's samples_per_s: generate + filters
+ verification + writing) and over the whole call (model load and reward-worker start-up
included). The naive loop only samples (one prompt, n samples per generate call, the same
sampling settings and max_new_tokens), timed after its model has loaded. One torch thread by
default (--threads): on 2 cores shared with other jobs, more threads made both paths slower.
Prints the rates and ratios; no assertion (the machine may be busy).

With --backend vllm (in the vLLM venv: make install-vllm) the stage also runs with vLLM's sampler on
the same prompts and checkpoint, and its rate is printed against the stage on r1cli's own decode loop
(the transformers backend); vLLM's CPU engine gets as many cores as --threads gives torch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def toy_world(tmp: Path) -> tuple[Path, Path]:
    demo = ROOT / "runs" / "demo"
    if (demo / "base" / "r1.json").exists() and (demo / "data" / "rl").exists():
        return demo / "base", demo / "data" / "rl"
    r1 = [sys.executable, "-m", "r1cli"]
    subprocess.run(r1 + ["toy", "data", str(tmp / "data")], check=True, capture_output=True)
    print("building a toy base model (a few minutes)...", flush=True)
    subprocess.run(r1 + ["toy", "base", str(tmp / "base")], check=True, capture_output=True)
    return tmp / "base", tmp / "data" / "rl"


def stage(model: Path, data: Path, out: Path, args, backend: str = "transformers") -> tuple[float, int, float]:
    """(wall seconds from call to return, samples, the manifest's samples/s over its chunks)."""
    import json

    from r1cli.config import RejectSampleConfig
    from r1cli.recipe import resolve
    from r1cli.stages import reject_sample

    cfg = resolve(RejectSampleConfig, ROOT / "recipes/toy/reject_sample.yaml",
                  [f"n={args.n}", f"limit={args.prompts}", f"sampling.max_new_tokens={args.max_new_tokens}",
                   f"backend={backend}"])
    t = time.perf_counter()
    reject_sample.run(cfg, model=model, data=data, out=out, force=True)
    seconds = time.perf_counter() - t
    m = json.loads((out / "r1.json").read_text())
    return seconds, m["counts"]["samples"], m["metrics"]["samples_per_s"]


def naive(model: Path, data: Path, args) -> tuple[float, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1cli.data import load_prompts
    from r1cli.rejection.sampling import as_messages

    tok = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    prompts = load_prompts(data).select(range(args.prompts))["prompt"]
    torch.manual_seed(0)
    samples = 0
    t = time.perf_counter()
    with torch.no_grad():
        for p in prompts:
            ids = tok.apply_chat_template(as_messages(p), add_generation_prompt=True, return_tensors="pt", return_dict=True)
            out = lm.generate(**ids, do_sample=True, temperature=0.6, top_p=0.95, top_k=0,
                              max_new_tokens=args.max_new_tokens, num_return_sequences=args.n,
                              pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
            samples += out.shape[0]
    return time.perf_counter() - t, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                    help="vllm: also run the stage on vLLM (CPU build) and print its rate against the decode loop")
    args = ap.parse_args()
    import os

    # vLLM's CPU engine pins its OpenMP threads to these cores: the same count torch gets
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{args.threads - 1}" if args.threads > 1 else "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, data = (args.model, args.data) if args.model and args.data else toy_world(tmp)
        s_sec, s_n, s_rate = stage(model, data, tmp / "rs", args)
        n_sec, n_n = naive(model, data, args)
        if args.backend == "vllm":
            v_sec, v_n, v_rate = stage(model, data, tmp / "rs_vllm", args, backend="vllm")
    naive_rate = n_n / n_sec
    print(f"{args.prompts} prompts x n={args.n}, max_new_tokens={args.max_new_tokens}, {args.threads} thread(s), "
          f"toy recipe batch size, model {model}")
    print(f"  r1 reject-sample, sampling + checks    {s_rate:8.1f} samples/s  (its chunks: generate, filters, verify, write)")
    print(f"  r1 reject-sample, whole command        {s_n / s_sec:8.1f} samples/s  ({s_n} samples in {s_sec:.1f} s, "
          "model load and worker start-up included)")
    print(f"  naive model.generate per prompt        {naive_rate:8.1f} samples/s  ({n_n} samples in {n_sec:.1f} s)")
    print(f"  ratio: {s_rate / naive_rate:.1f}x sampling path, {s_n / s_sec / naive_rate:.1f}x whole command (target >= 5x)")
    if args.backend == "vllm":
        print(f"  r1 reject-sample --backend vllm        {v_rate:8.1f} samples/s  (its chunks, as above)")
        print(f"  r1 reject-sample --backend vllm, whole {v_n / v_sec:8.1f} samples/s  ({v_n} samples in {v_sec:.1f} s, "
              "engine start-up included)")
        print(f"  ratio vllm / r1cli's decode loop: {v_rate / s_rate:.2f}x sampling path, "
              f"{v_n / v_sec / (s_n / s_sec):.2f}x whole command")


if __name__ == "__main__":
    main()
