"""Every GPU recipe (recipes/qwen2.5-math-7b/*.yaml) runs once, for one or two steps, on the toy model in
the vLLM venv. Only what must differ for a 1M-parameter model on a CPU is overridden (OVERRIDES below:
steps, batch and generation sizes, lengths that do not fit the toy's 512-token context, the step at which
the RMs start, scaled to a 2-step run); everything else runs as the recipe writes it, vLLM included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes" / "qwen2.5-math-7b"

# the only settings changed from each recipe, and why
RL = ["trl.max_steps=2",                    # steps
      "trl.gradient_accumulation_steps=1",  # batch: one generation batch a step (16 completions)
      "trl.max_completion_length=64"]       # length: 3072 does not fit the toy's 512-token context
OVERRIDES = {
    "grpo": RL,
    # tools: TRL's own tool loop with r1cli's sandboxed python tool (the toy tokenizer brings its response template)
    "grpo_tools": RL,
    "grpo_lora": RL,  # LoRA: TRL merges the adapter and loads the merged weights into the colocated engine
    # length: the paper's R1-Zero template leaves 36 of 400 toy prompts over the 448 tokens the context has
    # left beside a 64-token completion (r1 grpo refuses them); the toy's short template (recipes/toy/r1zero.yaml)
    "r1zero": RL + ['r1zero_template="Think in <think> </think>, then answer in <answer> </answer>. User: {prompt} Assistant:"'],
    # steps; the RMs start at step 1300 of 1700 in the recipe: in a 2-step run, at step 1
    "align": RL + ["preference_rewards_from=1"],
    # the same; its RMs are served (here by tests/fake_rm_server.py on the toy RMs; vLLM's own server is
    # test_served_rm.py's), at the URLs passed as flags
    "align_served": RL + ["preference_rewards_from=1"],
    # steps; batch: one micro-batch a step (the recipes accumulate 8-32: 2 steps of sft_lora took 4.5 minutes);
    # length: the toy context is 512 tokens
    **{name: ["trl.max_steps=2", "trl.gradient_accumulation_steps=1", "trl.max_length=512"]
       for name in ("coldstart", "coldstart_lora", "sft", "sft_lora", "rm_helpful", "rm_harmless")},
    # prompts and generation length (k, backend vllm and the sampling settings as written)
    "eval": ["limit=8", "sampling.max_new_tokens=64"],
    "reject_sample": ["limit=16", "sampling.max_new_tokens=64"],
}


def test_every_gpu_recipe_is_listed():
    assert sorted(p.stem for p in RECIPES.glob("*.yaml")) == sorted(OVERRIDES)


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_gpu_recipe_runs_on_the_toy_model(name, solver, world, rms, tmp_path, run_r1, r1_shared_vllm):
    out = tmp_path / name
    base = solver.parent / "base"
    servers = []
    if name == "align_served":
        sys.path.insert(0, str(REPO / "tests"))
        from fake_rm_server import FakeRM

        servers = [FakeRM(rm) for rm in rms]
    args = {
        "grpo": ["grpo", "--model", solver, "--data", world / "rl"],
        "grpo_lora": ["grpo", "--model", solver, "--data", world / "rl"],
        "grpo_tools": ["grpo", "--model", solver, "--data", world / "rl"],
        "r1zero": ["grpo", "--model", base, "--data", world / "rl"],
        "align": ["align", "--model", solver, "--data", world / "rl", "--data", world / "general",
                  "--helpful-rm", rms[0], "--harmless-rm", rms[1]],
        "align_served": ["align", "--model", solver, "--data", world / "rl", "--data", world / "general",
                         *(["--helpful-rm", servers[0].url, "--harmless-rm", servers[1].url] if servers else [])],
        "coldstart": ["coldstart", "--model", base, "--data", world / "coldstart"],
        "coldstart_lora": ["coldstart", "--model", base, "--data", world / "coldstart"],
        "sft": ["sft", "--model", base, "--data", world / "coldstart"],
        "sft_lora": ["sft", "--model", base, "--data", world / "coldstart"],
        "rm_helpful": ["rm", "--model", base, "--data", world / "helpful_pairs"],
        "rm_harmless": ["rm", "--model", base, "--data", world / "safety"],
        "eval": ["eval", "--model", solver, "--data", world / "eval"],
        "reject_sample": ["reject-sample", "--model", solver, "--data", world / "rl"],
    }[name]
    sets = [x for s in OVERRIDES[name] for x in ("--set", s)]
    args = [*args, "--out", out, "--recipe", RECIPES / f"{name}.yaml", *sets]
    # eval and reject-sample sample with the session's vLLM engine on the solver (conftest.py); the
    # trainers start their own (colocated) engine in a subprocess
    try:
        res = r1_shared_vllm(*args) if name in ("eval", "reject_sample") else run_r1(*args, timeout=1800)
    finally:
        for srv in servers:
            srv.close()
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((out / "r1.json").read_text())
    if m["kind"] == "checkpoint":
        assert m["counts"]["steps"] == 2
    if name in ("grpo", "grpo_lora", "grpo_tools", "r1zero", "align", "align_served"):
        assert m["config"]["trl"]["use_vllm"] is True
    if name == "grpo_tools":  # TRL's tool metrics, through r1cli's telemetry
        steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert any("tools/call_frequency" in r for r in steps)
    if name == "eval":
        assert m["counts"]["samples"] == 8 * 16 and m["config"]["backend"] == "vllm"
    if name == "reject_sample":
        assert m["counts"]["samples"] == 16 * 8 and m["config"]["backend"] == "vllm"
