"""A run dir as `make demo` lays it out, without training: checkpoint dirs with the manifests the
stages write (kind, stage, config, inputs), eval dirs whose rows are made up per prompt and whose
metrics are the real `summarize` of those rows, and an align manifest with its general_eval
before/after (per prompt, as r1 align records it). For the report and claims tests.

    run = fake_run(tmp_path / "run", pass1={"sft": 0.6, ...})
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from r1cli.artifacts import stage_output
from r1cli.data import save_dataset
from r1cli.evaluation import summarize

# pass@1 (share of right samples) and language consistency of each row, as the README's table has them
PASS1 = {"base": 0.2, "base_r1zero": 0.35, "r1zero": 0.95, "coldstart": 0.7, "grpo": 0.95, "grpo_nolang": 0.95,
         "sft": 0.96, "align": 0.96}
LANGUAGE = {"base": 0.2, "base_r1zero": 0.3, "r1zero": 0.5, "coldstart": 0.9, "grpo": 1.0, "grpo_nolang": 0.75,
            "sft": 1.0, "align": 1.0}
# stage -> (stage name, config, input checkpoint)
STAGES = {"base": ("toy-base", {}, None), "r1zero": ("grpo", {"template": "r1zero", "rewards": {"accuracy": 1}}, "base"),
          "coldstart": ("coldstart", {}, "base"),
          "grpo": ("grpo", {"template": "r1", "rewards": {"accuracy": 1, "language": 1}}, "coldstart"),
          "grpo_nolang": ("grpo", {"template": "r1", "rewards": {"accuracy": 1, "language": 0}}, "coldstart"),
          "sft": ("sft", {}, "base"), "align": ("align", {"template": "r1"}, "sft")}


def eval_rows(pass1: float, language: float, n_prompts: int, k: int, seed: int, tokens: int = 20) -> list[dict]:
    """k samples per prompt; a prompt's samples are right with a chance drawn around `pass1`, so prompts
    differ in difficulty as real ones do (0 and 1: every prompt), and each is consistent with chance `language`."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_prompts):
        p = pass1 if pass1 in (0.0, 1.0) else min(1.0, max(0.0, pass1 + rng.uniform(-0.3, 0.3)))
        for j in range(k):
            right = rng.random() < p
            rows.append({"id": f"p{i}", "prompt": f"What is {i}+1?", "answer": str(i + 1), "domain": "math",
                         "language": "en" if i % 2 else "zh", "sample_index": j,
                         "completion": f"<think>\nsum\n</think>\n\\boxed{{{i + 1 if right else i}}}",
                         "extracted_answer": str(i + 1 if right else i), "num_tokens": tokens + j,
                         "finish_reason": "stop", "reward_accuracy": float(right), "reward_format": 1.0,
                         "reward_language": 1.0, "language_consistent": rng.random() < language})
    return rows


def general(helpful: list[float], safe: list[int], right: list[int], n: int) -> dict:
    """r1 align's general_eval of one side: the means and, per prompt, sums over its n samples."""
    return {"n_prompts": len(helpful), "n_samples": n * len(helpful),
            "helpfulness_score_mean": round(statistics.fmean(helpful), 5),
            "safe_rate": round(sum(safe) / (n * len(safe)), 5), "right_reply": round(sum(right) / (n * len(right)), 5),
            "per_prompt": {"id": [f"g{i}" for i in range(len(helpful))], "n": [n] * len(helpful),
                           "helpfulness_score_sum": [round(h * n, 5) for h in helpful], "safe_count": safe,
                           "right_count": right}}


def fake_run(run: Path, *, pass1: dict | None = None, language: dict | None = None, skip=(), n_prompts: int = 200,
             k: int = 4, helpful=(0.3, 0.5), safe=(0.8, 1.0), right=(0.6, 0.6), wall_time: float = 963.0, tokens: int = 20,
             seed: int = 0) -> Path:
    """Checkpoints, evals and align's general eval; `skip` leaves those dirs (checkpoints or eval/<name>) out."""
    pass1, language = {**PASS1, **(pass1 or {})}, {**LANGUAGE, **(language or {})}
    run.mkdir(parents=True, exist_ok=True)
    with stage_output(run / "data" / "eval", kind="dataset", stage="toy-data", config={}) as r:
        (r.partial / "rows.txt").write_text("the eval prompts")
    rng = random.Random(seed)
    for name, (stage, cfg, parent) in STAGES.items():
        if name in skip:
            continue
        with stage_output(run / name, kind="checkpoint", stage=stage, config=cfg,
                          inputs=[run / parent] if parent else []) as r:
            (r.partial / "model.safetensors").write_text(f"weights of {name}")
            r.started = time.time() - wall_time  # the manifest's wall time: as if the stage took that long
            if name == "base":  # r1 toy base's copy probe
                r.metrics.update(copy_repeat=0.98, copy_repeat_cot=0.95, copy_translate=0.9, copy_operands=1.0)
            if name == "align":
                h0 = [rng.gauss(helpful[0], 0.1) for _ in range(40)]
                h1 = [h + helpful[1] - helpful[0] + rng.gauss(0, 0.02) for h in h0]
                s0 = [sum(rng.random() < safe[0] for _ in range(2)) for _ in range(40)]
                s1 = [max(a, sum(rng.random() < safe[1] for _ in range(2))) for a in s0]
                r0 = [sum(rng.random() < right[0] for _ in range(2)) for _ in range(40)]
                r1 = r0 if right[0] == right[1] else [sum(rng.random() < right[1] for _ in range(2)) for _ in range(40)]
                r.metrics["general_eval"] = {"before": general(h0, s0, r0, 2), "after": general(h1, s1, r1, 2)}
    for i, name in enumerate(PASS1):
        if f"eval/{name}" in skip or (name if name != "base_r1zero" else "base") in skip:
            continue
        model = run / ("base" if name == "base_r1zero" else name)
        template = "r1zero" if name in ("base_r1zero", "r1zero") else "r1"
        rows = eval_rows(pass1[name], language[name], n_prompts, k, seed * 100 + i, tokens)
        with stage_output(run / "eval" / name, kind="eval", stage="eval",
                          config={"template": template, "sampling": {"temperature": 0.6}},
                          inputs=[model, run / "data" / "eval"]) as r:
            from datasets import Dataset

            save_dataset(Dataset.from_list(rows), r.partial)
            r.metrics.update(summarize(rows, k))
    return run
