"""Scale-out, proven on CPU: the FSDP, ZeRO-2 and ZeRO-3 configs users launch on GPUs, run here as
their `*_cpu.yaml` variants with 2 processes over gloo (`make test-multiproc`), and the CPU variants
differ from the GPU configs only where they have to (`make test`).

    pytest -m multiproc tests/test_scale_out.py     # the launches (needs r1cli[deepspeed])
    pytest tests/test_scale_out.py                   # the config diff alone
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from test_resume import GRPO, GRPO_REWARDS, SFT, free_port, kill_and_resume, procs, run, train_rows  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
ACCEL = ROOT / "recipes/accelerate"

# (GPU config, CPU variant, what the run's manifest must say: accelerate's distributed type, ZeRO stage)
ENGINES = {
    "fsdp": ("fsdp.yaml", "fsdp_cpu.yaml", "FSDP", None),
    "zero2": ("zero2.yaml", "zero2_cpu.yaml", "DEEPSPEED", 2),
    "zero3": ("zero3.yaml", "zero3_cpu.yaml", "DEEPSPEED", 3),
}

# the only keys a CPU variant may change, each with why it has to (use_cpu need not: r1 itself runs the
# ranks on the CPU over gloo when there is no GPU, training.process_state)
ALLOWED = {
    "num_processes": "the GPU configs start one process per GPU (8); on a CPU machine 8 processes would share "
                     "a few cores, so the variants start 2 (--num_processes overrides either)",
    "mixed_precision": "DeepSpeed only: bf16 there enables bf16 in DeepSpeed's config, and transformers refuses "
                       "it against r1's CPU setting trl.bf16=false (`ds bf16.enabled=True vs hf bf16=False`); "
                       "FSDP keeps bf16 (its mixed-precision policy runs on the CPU)",
}
ALLOWED_FOR = {"fsdp": {"num_processes"}, "zero2": {"num_processes", "mixed_precision"},
               "zero3": {"num_processes", "mixed_precision"}}


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_cpu_variant_differs_only_where_it_must(engine):
    gpu_file, cpu_file, _, _ = ENGINES[engine]
    gpu = flatten(yaml.safe_load((ACCEL / gpu_file).read_text()))
    cpu = flatten(yaml.safe_load((ACCEL / cpu_file).read_text()))
    differing = {k for k in gpu.keys() | cpu.keys() if gpu.get(k, "<absent>") != cpu.get(k, "<absent>")}
    allowed = ALLOWED_FOR[engine]
    assert allowed <= set(ALLOWED)
    assert differing <= allowed, f"{cpu_file} differs from {gpu_file} in {sorted(differing - allowed)}"
    assert cpu["distributed_type"] == gpu["distributed_type"]  # the same engine, not a fallback to DDP


@pytest.mark.parametrize("config", ["zero2.yaml", "zero3.yaml"])
def test_gpu_deepspeed_config_is_refused_on_cpu(run_r1, toy_base, toy_data, tmp_path, monkeypatch, config):
    """What the launcher tells each rank for zero2.yaml / zero3.yaml (bf16), without a GPU: one line, exit 2,
    before the model loads (transformers would refuse it later, after the load, with a traceback)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("the refusal is for machines without a GPU")
    cfg = yaml.safe_load((ACCEL / config).read_text())
    monkeypatch.setenv("WORLD_SIZE", "2")  # as a rank of `accelerate launch --config_file ...` sees it
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", cfg["mixed_precision"])
    p = run_r1("sft", "--model", toy_base, "--data", toy_data / "coldstart", "--out", tmp_path / "o")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: the accelerate config asks DeepSpeed for bf16 (mixed_precision), but without a GPU r1 trains in "
        "float32: launch with recipes/accelerate/zero2_cpu.yaml or zero3_cpu.yaml"]
    assert not list(tmp_path.iterdir())


# --- 2 processes on CPU, through each config ------------------------------------------------------


def launch_cmd(config: str) -> list:
    """`accelerate launch --config_file recipes/accelerate/CONFIG --num_processes 2 -m r1cli` (a free port:
    other runs may be launching on the same machine)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", ACCEL / config,
            "--num_processes", "2", "--main_process_port", free_port(), "-m", "r1cli"]


def check_full_weights(out: Path, base: Path) -> None:
    """OUT holds the whole model, gathered from the shards: every tensor of the input model, at its full
    shape, loadable by AutoModelForCausalLM, and trained (not the input's weights copied)."""
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert {k: tuple(v.shape) for k, v in after.items()} == {k: tuple(v.shape) for k, v in before.items()}
    assert sum(v.numel() for v in after.values()) == sum(v.numel() for v in before.values())
    assert any(not (after[k] == before[k]).all() for k in before)


def check_engine(m: dict, engine: str) -> None:
    """The run really was sharded as configured: accelerate drops FSDP / DeepSpeed for plain DDP on CPU
    unless r1 keeps it (training.process_state), and the manifest records what it got."""
    _, _, kind, stage = ENGINES[engine]
    assert m["counts"]["processes"] == 2
    assert m["counts"]["distributed"] == kind
    assert m["counts"].get("zero_stage") == stage


@pytest.mark.multiproc
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_sft_kill_and_resume(procs, toy_base, toy_data, tmp_path, engine):  # noqa: F811
    """exit 0, one finished OUT with the full weights; SIGKILL after a checkpoint, then --resume
    continues from it (kill_and_resume checks the step, the logs and that no OUT appeared meanwhile)."""
    cmd = launch_cmd(ENGINES[engine][1]) + ["sft", "--model", toy_base, "--data", toy_data / "coldstart", *SFT,
                                            "--set", "trl.max_steps=8"]
    m = kill_and_resume(procs, cmd, tmp_path / "o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    assert m["status"] == "finished" and m["counts"]["steps"] == 8
    check_engine(m, engine)
    rows = train_rows(tmp_path / "o")
    assert [r["step"] for r in rows] == list(range(1, 9))  # one writer, every step once across the kill
    check_full_weights(tmp_path / "o", toy_base)


@pytest.mark.multiproc
@pytest.mark.parametrize("decode_loop", [False, True])
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_grpo(procs, toy_base, toy_data, tmp_path, engine, decode_loop):  # noqa: F811
    """GRPO generates with the sharded model (TRL gathers ZeRO-3 / FSDP parameters to sample), with TRL's
    generate and with r1cli's decode loop (r1cli/training/rollouts.py: the same unwrapping, then decode)."""
    out = tmp_path / "o"
    code, err = run(procs, launch_cmd(ENGINES[engine][1]) + [
        "grpo", "--model", toy_base, "--data", toy_data / "rl", "--out", out, *GRPO, *GRPO_REWARDS,
        "--set", "trl.max_steps=2", "--set", f"decode_loop={str(decode_loop).lower()}"])
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    m = json.loads((out / "r1.json").read_text())
    assert m["status"] == "finished" and m["counts"]["completions"] == 2 * 8 * 2
    assert m["config"]["decode_loop"] is decode_loop
    check_engine(m, engine)
    check_full_weights(out, toy_base)
