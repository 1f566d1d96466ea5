"""No work is lost: an error found after training keeps the trained weights (and --resume finishes
only the rest), and two runs never write the same OUT at once (an OS lock, which a SIGKILL does not
leave behind). The real CLI on the toy world.

    pytest tests/test_no_lost_work.py
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from test_resume import GRPO, SFT, TIMEOUT, procs, r1_cmd, run, start, wait_until  # noqa: F401, F811 (procs: a fixture)

from r1cli.cli import main
from r1cli.errors import UserError

# --- an error after training ---------------------------------------------------------------------------

STAGES = {
    "coldstart": ("coldstart", "{data}/coldstart", [*SFT, "--set", "trl.max_steps=4"]),
    "grpo": ("grpo", "{data}/rl", [*GRPO, "--set", "trl.max_steps=2"]),
}


def r1(capsys, *args) -> tuple[int, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("stage", list(STAGES))
def test_an_error_after_training_keeps_the_weights_and_resume_finishes_the_rest(
        stage, toy_base, toy_data, tmp_path, capsys, monkeypatch):
    import trl

    from r1cli.stages import grpo as grpo_stage
    from r1cli.stages import sft as sft_stage

    command, data, extra = STAGES[stage]
    module = sft_stage if command == "coldstart" else grpo_stage
    out = tmp_path / "out"
    args = [command, "--model", toy_base, "--data", data.format(data=toy_data), "--out", out,
            "--eval-data", f"{toy_data}/eval", "--set", "eval.limit=4", "--set", "eval.sampling.max_new_tokens=16", *extra]

    def eval_fails(*a, **k):  # the failure is injected after the weights are saved (the eval set went away, say)
        raise UserError("simulated: the eval data could not be read")

    monkeypatch.setattr(module, "before_after", eval_fails)
    code, err = r1(capsys, *args)
    partial = Path(f"{out}.partial")
    assert code == 2 and "simulated" in err and "--resume" in err and str(partial) in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # training may have warned before
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1] and "simulated" in errors[0], err
    assert (partial / "model.safetensors").is_file() and not out.exists()
    kept = json.loads((partial / "r1.json").read_text())
    assert kept["status"] == "running" and kept["saved"] and kept["counts"]["steps"] > 0

    # --resume: the weights are reused (training must not run again), the eval runs, OUT is finished
    monkeypatch.undo()
    trainer = trl.SFTTrainer if command == "coldstart" else trl.GRPOTrainer

    def no_training(*a, **k):
        raise AssertionError("--resume trained again although the weights were saved")

    monkeypatch.setattr(trainer, "train", no_training)
    weights = (partial / "model.safetensors").read_bytes()
    code, err = r1(capsys, *args, "--resume")
    assert code == 0, err
    m = json.loads((out / "r1.json").read_text())
    assert m["status"] == "finished" and m["counts"]["steps"] == kept["counts"]["steps"]
    assert m["metrics"]["eval"]["before"]["n_prompts"] == 4 and m["metrics"]["eval"]["after"]["n_prompts"] == 4
    assert (out / "model.safetensors").read_bytes() == weights
    assert "trl_args" in m["config"] and m["config"]["trl_args"]["max_steps"] == kept["config"]["trl_args"]["max_steps"]


# --- one run per OUT ------------------------------------------------------------------------------------


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_second_eval_of_the_same_out_is_refused_even_with_force(procs, toy_base, toy_data, tmp_path):
    """Two `r1 eval ... --force` runs on one OUT: the second must not delete the first run's E.partial/ (both
    would then say `wrote E`). It is refused, naming the first run's pid, and the first run's E is whole."""
    out = tmp_path / "E"
    first = start(procs, r1_cmd("eval", "--model", toy_base, "--data", f"{toy_data}/eval", "--out", out, "--k", 16,
                                "--max-new-tokens", 64))
    wait_until(first, lambda: Path(f"{out}.partial").is_dir())
    assert first.poll() is None, "the first run ended before the second could start: make it longer"
    code, err = run(procs, r1_cmd("eval", "--model", toy_base, "--data", f"{toy_data}/eval", "--out", out, "--k", 2,
                                  "--force"))
    assert code == 2 and f"pid {first.pid}" in one_line(err), err
    assert first.wait(TIMEOUT) == 0
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["samples"] == 16 * m["counts"]["prompts"]


def test_a_trainer_stage_holds_its_out_and_a_sigkill_leaves_no_stale_lock(procs, toy_base, toy_data, tmp_path):
    out = tmp_path / "sft"
    cmd = r1_cmd("coldstart", "--model", toy_base, "--data", f"{toy_data}/coldstart", "--out", out, *SFT)
    first = start(procs, [*cmd, "--set", "trl.max_steps=2000"])
    partial = Path(f"{out}.partial")
    wait_until(first, lambda: (partial / "trainer").is_dir())
    assert first.poll() is None
    for flag in ("--resume", "--force"):
        code, err = run(procs, [*cmd, "--set", "trl.max_steps=4", flag])
        assert code == 2 and f"pid {first.pid}" in one_line(err), err
    assert partial.is_dir()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    code, err = run(procs, [*cmd, "--set", "trl.max_steps=4", "--resume"])
    assert code == 0, err
    assert json.loads((out / "r1.json").read_text())["status"] == "finished"


def test_reject_sample_holds_its_out_and_a_sigkill_leaves_no_stale_lock(procs, toy_base, toy_data, tmp_path):
    out = tmp_path / "rs"
    # 16 samples a prompt: with 4 the whole run took 5 s after its first chunk, about what the second
    # command needs to start, and the first could finish before it was killed
    cmd = r1_cmd("reject-sample", "--model", toy_base, "--data", f"{toy_data}/rl", "--out", out, "--n", 16,
                 "--set", "chunk_size=8", "--set", "sampling.max_new_tokens=48", "--set", "verifier_general=rule")
    first = start(procs, cmd)
    chunks = Path(f"{out}.partial") / "chunks"
    wait_until(first, lambda: chunks.is_dir() and any(chunks.glob("*.arrow")))
    assert first.poll() is None
    code, err = run(procs, [*cmd, "--force"])
    assert code == 2 and f"pid {first.pid}" in one_line(err), err
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done = len(list(chunks.glob("*.arrow")))
    code, err = run(procs, [*cmd, "--resume"])
    assert code == 0, err
    m = json.loads((out / "r1.json").read_text())
    assert m["status"] == "finished" and m["counts"]["chunks"] >= done
