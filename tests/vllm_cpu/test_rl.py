"""`r1 grpo` with `trl.use_vllm` on the CPU: TRL's GRPOTrainer sampling with a vLLM
engine in the training process (colocate), and the server mode's refusal on a machine without CUDA."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

COLOCATE = ["--set", "trl.use_vllm=true", "--set", "trl.vllm_mode=colocate", "--set", "trl.logging_steps=1",
            "--set", "samples_every=1", "--set", "trl.save_strategy='no'"]


def metrics(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "reward" in r]


# LoRA: TRL merges the adapter into the weights it sends to the engine, then unmerges it
LORA = ["--set", "peft.r=16", "--set", "peft.lora_alpha=32", "--set", "peft.target_modules=all-linear"]


@pytest.mark.parametrize("peft", [[], LORA], ids=["full", "lora"])
def test_grpo_colocate_weights_reach_vllm(peft, solver, world, tmp_path, run_r1):
    """The trainer's vLLM engine draws every completion; after each update TRL loads the new weights
    into it (with LoRA: the adapter merged into them). A learning rate far too high wrecks the policy in
    one update, so the two cases cannot be confused: completions drawn after the first step must score
    like the wrecked (trained) policy, not like the starting model, and vLLM's sampling log-probs must
    match the trainer's own at every step."""
    out = tmp_path / "grpo"
    res = run_r1("grpo", "--model", solver, "--data", world / "rl", "--out", out,
                 "--recipe", REPO / "recipes/toy/grpo.yaml", *COLOCATE, *peft,
                 "--set", "trl.max_steps=3", "--set", "trl.per_device_train_batch_size=32", "--set", "trl.num_generations=4",
                 "--set", "trl.gradient_accumulation_steps=1",  # one micro-batch of 32 a step (the recipe has 4 of 16)
                 "--set", "trl.max_completion_length=64", "--set", "trl.learning_rate=0.05", timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    if peft:  # OUT is the merged model, trained through the adapter
        assert json.loads((out / "r1.json").read_text())["peft"]["method"] == "lora"
    first, last = rows[0], rows[-1]
    # step 1 samples the starting model: it writes the format; later steps sample the wrecked policy
    assert first["rewards/format/mean"] > 0.5, first
    # the trained (wrecked) policy scored by r1 eval with the transformers backend
    res = run_r1("eval", "--model", out, "--data", world / "eval", "--out", tmp_path / "ev", "--limit", 64, "--k", 1,
                 "--max-new-tokens", 64, "--temperature", 1.0, "--top-p", 1.0, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    trained = json.loads((tmp_path / "ev" / "r1.json").read_text())["metrics"]["format_rate"]
    assert trained < 0.2, trained
    assert abs(last["rewards/format/mean"] - trained) < 0.2, (last, trained)
    assert first["rewards/format/mean"] - last["rewards/format/mean"] > 0.4
    # vLLM's log-probs of its own samples vs the trainer's recomputation: equal up to numerics when the
    # engine holds the trainer's weights (TRL logs their difference for its importance-sampling correction)
    key = next((k for k in last if re.fullmatch(r"sampling/sampling_logp_difference/mean", k)), None)
    if key is not None:
        assert all(r[key] < 0.05 for r in rows), [r[key] for r in rows]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    # a sample is labelled with the global step its rewards were computed at, one before its update
    # (r1cli/training/rundir.py resume keeps samples.jsonl by that rule): steps 1 and 3 log samples 0 and 2
    assert {s["step"] for s in samples} >= {0, 2}


def test_grpo_server_mode_refused_without_cuda(solver, world, tmp_path, run_r1):
    out = tmp_path / "server"
    res = run_r1("grpo", "--model", solver, "--data", world / "rl", "--out", out, "--recipe", REPO / "recipes/toy/grpo.yaml",
                 "--set", "trl.use_vllm=true", "--set", "trl.vllm_mode=server", "--set", "trl.max_steps=1", timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr and "server" in err[0] and "CUDA" in err[0], res.stderr
    assert not out.exists() and not Path(str(out) + ".partial").exists()


# r1 align with vLLM colocated: test_recipes.py runs the GPU align recipe (use_vllm, colocate) as written
