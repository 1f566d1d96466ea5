"""Samples/s of `r1 reject-sample` against the strongest plain sampler a user would write: batched
`model.generate` with left padding, best of several prompts-per-call sizes; on the same toy model,
prompts and sampling settings, in one command. Target: see bench/README.md.

    PYTHONPATH=$PWD .venv/bin/python bench/reject_sample.py [--model DIR --data DIR] [--prompts 128] [--n 4]
        [--max-new-tokens 128] [--sizes 4,8,16] [--threads 1] [--reps 3] [--quick]

Without --model/--data the toy world is built (or reused, when its fingerprints match) under
runs/bench_world: `r1 toy data` and `r1 toy base --steps 300` (a base that ends its answers, so
samples differ in length as real ones do).

Rows, each run once per repetition, in this order (A B C ... A B C ...):
- r1 reject-sample: the command in a child process with recipes/toy/reject_sample.yaml (sampling,
  filters, verification, chunk files, the dataset dir). Its rate over its chunks (the manifest's
  samples_per_s) is the sampling path; its rate over the whole process (start-up and model load
  included) is printed beside it.
- model.generate, K prompts a call: K prompts' chat templates, left-padded, n samples each
  (num_return_sequences), for each K of --sizes. Only sampling: no filters, no verification, no
  writing, and the model is loaded before the clock starts. The strongest baseline is the K with the
  best median.
- model.generate, one prompt a call: the per-prompt loop (n samples per call), for reference.
- vLLM (`LLM.generate`, n samples per prompt, all prompts in one call): only when `import vllm`
  works in this interpreter (vLLM's CPU build: make install-vllm, then .venv-vllm/bin/python);
  otherwise the bench says why the row was not run. The engine gets --threads cores.
Printed: each row's samples/s (median and min-max over reps) and the ratio of the stage to each
baseline, taken within each repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _timing
from _world import ROOT, model_and_rl_data, r1

RECIPE = ROOT / "recipes/toy/reject_sample.yaml"
# the toy recipe's sampling settings (recipes/toy/reject_sample.yaml); top_k 0 switches off
# transformers' default top-k 50, which the stage does not apply either
SAMPLING = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 0}


def stage(model: Path, data: Path, out: Path, a, rows: list) -> float:
    """Seconds per sample over the stage's chunks; the whole command's rate goes into `rows`."""
    t = time.perf_counter()
    r1(["reject-sample", "--model", model, "--data", data, "--out", out, "--recipe", RECIPE, "--force",
        "--set", f"n={a.n}", "--set", f"limit={a.prompts}", "--set", f"sampling.max_new_tokens={a.max_new_tokens}"],
       threads=a.threads)
    wall = time.perf_counter() - t
    m = json.loads((out / "r1.json").read_text())
    rows.append(m["counts"]["samples"] / wall)
    return 1 / m["metrics"]["samples_per_s"]


class Plain:
    """The user's own sampler: transformers' model.generate, the model loaded once."""

    def __init__(self, model: Path, data: Path, a):
        import torch
        from datasets import load_from_disk
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch, self.a = torch, a
        self.tok = AutoTokenizer.from_pretrained(model)
        self.tok.padding_side = "left"  # decoder-only: the new tokens follow every prompt's last token
        self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        rows = load_from_disk(str(data)).select(range(a.prompts))["prompt"]
        msgs = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in rows]
        self.texts = [self.tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        self.kw = {**SAMPLING, "max_new_tokens": a.max_new_tokens, "num_return_sequences": a.n, "pad_token_id": pad}

    def run(self, per_call: int) -> float:
        """Seconds per sample with `per_call` prompts a generate call."""
        self.torch.manual_seed(0)
        samples, t = 0, time.perf_counter()
        with self.torch.no_grad():
            for s in range(0, len(self.texts), per_call):
                # the chat template already holds any special tokens: add none
                enc = self.tok(self.texts[s:s + per_call], return_tensors="pt", padding=True, add_special_tokens=False)
                samples += self.lm.generate(**enc, **self.kw).shape[0]
        return (time.perf_counter() - t) / samples


class VLLM:
    def __init__(self, model: Path, texts: list[str], a):
        from vllm import LLM, SamplingParams

        self.llm = LLM(model=str(model), dtype="float32", seed=0, enforce_eager=True)
        self.texts = texts
        self.params = SamplingParams(n=a.n, temperature=SAMPLING["temperature"], top_p=SAMPLING["top_p"],
                                     max_tokens=a.max_new_tokens, seed=0)

    def run(self) -> float:
        t = time.perf_counter()
        outs = self.llm.generate(self.texts, self.params, use_tqdm=False)
        return (time.perf_counter() - t) / sum(len(o.outputs) for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--sizes", default="4,8,16", help="prompts per generate call for the batched baseline")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/bench_reject_sample")
    _timing.add_args(ap)
    a = ap.parse_args()
    _timing.check_reps(a.reps)
    if a.quick:
        a.prompts, a.max_new_tokens = 16, 32
    sizes = [int(x) for x in a.sizes.split(",")]
    # vLLM's CPU engine pins its OpenMP threads to these cores: the same count torch gets
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{a.threads - 1}" if a.threads > 1 else "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    torch.set_num_threads(a.threads)
    print(_timing.machine())
    model, data = model_and_rl_data(a)

    plain = Plain(model, data, a)
    try:
        vllm = VLLM(model, plain.texts, a)
        no_vllm = None
    except ImportError as e:
        vllm, no_vllm = None, f"`import vllm` fails in {sys.executable} ({e})"
    whole: list[float] = []
    sides = {"r1 reject-sample (its chunks)": lambda: stage(model, data, a.work / "rs", a, whole)}
    for k in sizes:
        sides[f"model.generate, {k} prompts a call"] = lambda k=k: plain.run(k)
    sides["model.generate, 1 prompt a call"] = lambda: plain.run(1)
    if vllm is not None:
        sides["vLLM LLM.generate"] = vllm.run
    cost = _timing.alternate(sides, a.reps, unit="s/sample")

    ours = cost["r1 reject-sample (its chunks)"]
    best = min(sizes, key=lambda k: _timing.median(cost[f"model.generate, {k} prompts a call"]))
    strongest = f"model.generate, {best} prompts a call"
    print(f"\n{a.prompts} prompts x n={a.n}, max_new_tokens={a.max_new_tokens}, {a.threads} thread(s), "
          f"toy recipe settings, model {model}")
    for name, c in cost.items():
        print(f"  {name:38s} {_timing.spread([1 / x for x in c], '{:.1f}', ' samples/s')}")
    print(f"  {'r1 reject-sample (whole command)':38s} {_timing.spread(whole, '{:.1f}', ' samples/s')}  "
          "(start-up and model load included)")
    if no_vllm:
        print(f"  vLLM row not run: {no_vllm}")
    print(f"\nratio r1 reject-sample / {strongest} (the strongest baseline): "
          f"{_timing.spread(_timing.ratios(cost[strongest], ours), suffix='x')} sampling path; "
          f"{_timing.spread(_timing.ratios(cost[strongest], [1 / x for x in whole]), suffix='x')} "
          "whole command")
    for name in cost:
        if name not in (strongest, "r1 reject-sample (its chunks)"):
            print(f"ratio r1 reject-sample / {name}: {_timing.spread(_timing.ratios(cost[name], ours), suffix='x')}")


if __name__ == "__main__":
    main()
