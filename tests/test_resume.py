"""Crashes cost at most the last checkpoint: SIGKILL mid-run then --resume for each trainer
stage, a disk that fills up mid-run, Ctrl-C, and 2-process runs on CPU. The real CLI on the
toy world, a few steps each. (reject-sample's kill/resume test is in tests/test_reject_sample.py.)

    pytest tests/test_resume.py
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1cli.artifacts import StageRun
from r1cli.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# the bound on any one wait: generous, the machine is shared; no assertion depends on timing
TIMEOUT = 600

SFT = ["--set", "trl.per_device_train_batch_size=4", "--set", "trl.max_length=256", "--set", "trl.logging_steps=1",
       "--set", "trl.save_strategy=steps", "--set", "trl.save_steps=2"]
GRPO = ["--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
        "--set", "trl.max_completion_length=32", "--set", "trl.logging_steps=1", "--set", "samples_every=1",
        "--set", "trl.save_strategy=steps", "--set", "trl.save_steps=2", "--set", "trl.learning_rate=5e-5"]
# the toy base earns no accuracy or format reward yet: DAPO's overlong penalty varies with the length
# within a group, so the advantages are not all zero and the weights really move between steps
GRPO_REWARDS = ["--set", "rewards={accuracy: 1, format: 1, overlong: 1}", "--set", "reward_options.max_completion_len=32",
                "--set", "reward_options.soft_punish_cache=24"]


def r1_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "r1cli", *[str(a) for a in args]]


@pytest.fixture
def procs():
    """Processes a test starts (each in its own group); whatever is left is killed at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        kill_tree(p)
        p.wait()


def kill_tree(p: subprocess.Popen) -> None:
    """SIGKILL a started process, its group and every descendant: torchrun (accelerate launch) starts its
    ranks in sessions of their own, which a signal to the launcher's group does not reach."""
    import psutil

    try:
        kids = psutil.Process(p.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        kids = []
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    for k in kids:
        try:
            k.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(kids, timeout=30)


def start(procs, cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    # SIGINT back to its default in the child: a test run started in the background (nohup ... &)
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt
    p = subprocess.Popen([str(a) for a in cmd], env=ENV, stdout=stdout, stderr=stderr, start_new_session=True,
                         text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    procs.append(p)
    return p


def run(procs, cmd) -> tuple[int, str]:
    """Run to the end: (exit code, stderr)."""
    p = start(procs, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, err


def wait_until(proc, ready) -> None:
    deadline = time.time() + TIMEOUT
    while proc.poll() is None and not ready() and time.time() < deadline:
        time.sleep(0.02)


def logged_steps(path: Path) -> list[int]:
    """Steps in a metrics.jsonl so far (a line being written may be cut: skipped)."""
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            out.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass
    return out


def complete_checkpoint(partial: Path) -> int:
    """The step of the newest checkpoint with its trainer state written (0 if none)."""
    steps = [0]
    for c in (partial / "trainer").glob("checkpoint-*"):
        try:
            steps.append(json.loads((c / "trainer_state.json").read_text())["global_step"])
        except (OSError, ValueError, KeyError):
            pass
    return max(steps)


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def train_rows(out: Path) -> list[dict]:
    return [r for r in records(out / "metrics.jsonl") if "loss" in r]


# --- SIGKILL, then --resume -------------------------------------------------------------------


def kill_and_resume(procs, cmd: list[str], out: Path) -> dict:
    """Run `cmd --out out`, SIGKILL it once a checkpoint is on disk and a later step is logged,
    check OUT never appeared, rerun with --resume; return the finished manifest."""
    partial = Path(f"{out}.partial")
    p = start(procs, cmd + ["--out", str(out)])

    def ready():
        ckpt = complete_checkpoint(partial)
        return ckpt > 0 and max(logged_steps(partial / "metrics.jsonl"), default=0) > ckpt

    wait_until(p, ready)
    kill_tree(p)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and partial.is_dir()  # a killed run never leaves a (half-written) OUT
    at_kill = complete_checkpoint(partial)
    code, err = run(procs, cmd + ["--out", str(out), "--resume"])
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and not partial.exists()
    m = json.loads((out / "r1.json").read_text())
    # it continued from the newest complete checkpoint on disk at the kill, not from step 0
    assert m["counts"]["resumed_from_step"] == at_kill > 0
    assert not (out / "trainer").exists()
    return m


def uninterrupted(procs, cmd: list[str], out: Path) -> dict:
    code, err = run(procs, cmd + ["--out", str(out)])
    assert code == 0, err[-3000:]
    return json.loads((out / "r1.json").read_text())


def same_steps(resumed: Path, whole: Path, keys: tuple[str, ...]) -> None:
    """Every step logged exactly once, and each step's numbers equal the uninterrupted run's: CPU
    training here is deterministic, and a resume restores model, optimizer, RNG and data position."""
    a, b = train_rows(resumed), train_rows(whole)
    assert b and [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, len(b) + 1))
    for x, y in zip(a, b):
        for k in keys:
            assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-7), (x["step"], k)


def test_sft_kill_and_resume(procs, toy_base, toy_data, tmp_path):
    cmd = r1_cmd("coldstart", "--model", toy_base, "--data", toy_data / "coldstart", *SFT, "--set", "trl.max_steps=16")
    m = kill_and_resume(procs, cmd, tmp_path / "killed")
    whole = uninterrupted(procs, cmd, tmp_path / "whole")
    assert m["counts"]["steps"] == whole["counts"]["steps"] == 16
    # the same loss at every step means the same batches in the same order
    same_steps(tmp_path / "killed", tmp_path / "whole", ("loss", "learning_rate", "num_tokens"))
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "killed")


def same_samples(resumed: Path, whole: Path) -> None:
    """The prompts seen at every step (the data order) and what the model sampled for them."""
    key = lambda s: (s["step"], s["prompt"], s["completion"], s.get("answer"))  # noqa: E731
    a, b = records(resumed / "samples.jsonl"), records(whole / "samples.jsonl")
    assert a and [key(s) for s in a] == [key(s) for s in b]


def test_grpo_kill_and_resume(procs, toy_base, toy_data, tmp_path):
    cmd = r1_cmd("grpo", "--model", toy_base, "--data", toy_data / "rl", *GRPO, *GRPO_REWARDS, "--set", "trl.max_steps=8")
    m = kill_and_resume(procs, cmd, tmp_path / "killed")
    whole = uninterrupted(procs, cmd, tmp_path / "whole")
    assert m["counts"]["steps"] == whole["counts"]["steps"] == 8
    assert m["counts"]["completions"] == whole["counts"]["completions"]
    same_steps(tmp_path / "killed", tmp_path / "whole", ("loss", "reward", "completions/mean_length", "num_tokens"))
    same_samples(tmp_path / "killed", tmp_path / "whole")
    assert any(r["loss"] != 0 for r in train_rows(tmp_path / "whole"))  # the weights did move


def test_align_kill_and_resume(procs, toy_base, toy_data, tmp_path):
    from test_align import save_tiny_rm

    rms = save_tiny_rm(tmp_path / "rm_helpful", seed=0), save_tiny_rm(tmp_path / "rm_safety", seed=1)
    cmd = r1_cmd("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general",
                 "--helpful-rm", rms[0], "--harmless-rm", rms[1], *GRPO, "--set", "trl.max_steps=8",
                 "--set", "preference_rewards_from=2", "--set", "general_fraction=0.5")
    m = kill_and_resume(procs, cmd, tmp_path / "killed")
    whole = uninterrupted(procs, cmd, tmp_path / "whole")
    assert m["counts"]["steps"] == whole["counts"]["steps"] == 8
    same_steps(tmp_path / "killed", tmp_path / "whole", ("loss", "reward", "completions/mean_length"))
    same_samples(tmp_path / "killed", tmp_path / "whole")  # the mixed reasoning/general order too
    assert any(r["loss"] != 0 for r in train_rows(tmp_path / "whole"))  # the weights did move


def test_resume_skips_a_half_written_checkpoint_and_cuts_the_logs(tmp_path):
    """What a kill leaves: checkpoint-4 without its trainer state (killed while TRL wrote it),
    log lines past the last checkpoint, a cut last line."""
    from r1cli.training.rundir import resume_checkpoint

    part = tmp_path / "o.partial"
    for step, done in ((2, True), (4, False)):
        d = part / "trainer" / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"x")
        if done:
            (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    (part / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6))
                                        + '{"step": 6, "lo')
    (part / "samples.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(0, 5)))
    run = StageRun(out=tmp_path / "o", partial=part, kind="checkpoint", stage="sft", config={}, inputs=[],
                   resumed=True)
    assert resume_checkpoint(run) == str(part / "trainer" / "checkpoint-2")
    assert not (part / "trainer" / "checkpoint-4").exists()
    assert logged_steps(part / "metrics.jsonl") == [1, 2]
    assert [r["step"] for r in records(part / "samples.jsonl")] == [0, 1]  # step 2's samples fed update 3
    assert run.counts["resumed_from_step"] == 2
    # no complete checkpoint at all: start over, with empty logs
    (part / "trainer" / "checkpoint-2" / "trainer_state.json").unlink()
    assert resume_checkpoint(run) is None and logged_steps(part / "metrics.jsonl") == []
    assert not list((part / "trainer").glob("checkpoint-*"))
    run.resumed = False
    assert resume_checkpoint(run) is None


# --- a disk that fills up -----------------------------------------------------------------------


def r1(*args) -> int:
    """`r1 ...` in-process; the exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return e.code or 0
    return 0


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def tree(d: Path) -> dict:
    return {f.relative_to(d).as_posix(): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


class SmallDisk:
    """The files r1cli.artifacts writes (logs, manifests) share `room` bytes; the write that goes
    past it lands partly, then fails as a full disk does: ENOSPC, with no file name."""

    def __init__(self, room: int):
        self.room = room

    def open(self, path, mode="r", *a, **kw):
        fh = open(path, mode, *a, **kw)
        return fh if "r" in mode else _Limited(fh, self)


class _Limited:
    def __init__(self, fh, disk: SmallDisk):
        self.fh, self.disk = fh, disk

    def write(self, text):
        if len(text) > self.disk.room:
            self.fh.write(text[:self.disk.room])
            self.fh.flush()
            self.disk.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.room -= len(text)
        return self.fh.write(text)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_disk_full_while_logging(toy_base, toy_data, tmp_path, capsys, monkeypatch):
    """A finished OUT survives a --force rerun that runs out of space; the rerun's OUT.partial
    resumes once there is space again."""
    from r1cli import artifacts

    out = tmp_path / "cs"
    cmd = ["coldstart", "--model", toy_base, "--data", toy_data / "coldstart", "--out", out, *SFT,
           "--set", "trl.max_steps=6"]
    assert r1(*cmd) == 0
    before = tree(out)
    capsys.readouterr()
    disk = SmallDisk(room=len((out / "r1.json").read_bytes()) + 1200)  # the first manifest and a few log lines
    monkeypatch.setattr(artifacts, "open", disk.open, raising=False)
    assert r1(*cmd, "--force") == 2
    line = one_line(capsys.readouterr().err)
    assert line == (f"error: no space left on device while writing {tmp_path / 'cs.partial' / 'metrics.jsonl'}: "
                    "free space and run the same command with --resume to continue from OUT.partial/")
    assert tree(out) == before  # the earlier finished OUT is intact
    assert (tmp_path / "cs.partial").is_dir()
    monkeypatch.undo()  # space again
    assert r1(*cmd, "--force", "--resume") == 0
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["steps"] == 6 and m["counts"]["resumed_from_step"] >= 2
    assert logged_steps(out / "metrics.jsonl")[:6] == [1, 2, 3, 4, 5, 6]  # the cut line is gone


def test_disk_full_while_saving_a_checkpoint(toy_base, toy_data, tmp_path, capsys, monkeypatch):
    """torch.save on a full disk says only `unexpected pos N vs M` (measured on a 10 MB tmpfs):
    the free space tells it apart. The half-written checkpoint is skipped on resume."""
    import torch

    from r1cli import artifacts

    real, saves = torch.save, []

    def save(obj, f, *a, **kw):
        saves.append(str(f))
        if str(f).endswith("checkpoint-4/optimizer.pt"):
            Path(f).write_bytes(b"PK\x03\x04 cut short")
            monkeypatch.setattr(artifacts, "_free_bytes", lambda where: 0)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "cs"
    cmd = ["coldstart", "--model", toy_base, "--data", toy_data / "coldstart", "--out", out, *SFT,
           "--set", "trl.max_steps=6"]
    assert r1(*cmd) == 2
    line = one_line(capsys.readouterr().err)
    assert line == (f"error: no space left on device while writing {tmp_path / 'cs.partial'}: "
                    "free space and run the same command with --resume to continue from OUT.partial/")
    ckpt = tmp_path / "cs.partial" / "trainer"
    assert (ckpt / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (ckpt / "checkpoint-4" / "trainer_state.json").exists() and not out.exists()
    monkeypatch.undo()
    assert r1(*cmd, "--resume") == 0
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["resumed_from_step"] == 2 and m["counts"]["steps"] == 6
    assert [r["step"] for r in train_rows(out)] == [1, 2, 3, 4, 5, 6]


def test_disk_full_while_saving_a_dataset(toy_data, tmp_path, capsys, monkeypatch):
    """A dataset stage has no --resume: the line says --force."""
    from datasets import Dataset

    def full(self, path, *a, **kw):
        (Path(path) / "data-00000-of-00001.arrow").parent.mkdir(parents=True, exist_ok=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"ARROW1 cut short")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Dataset, "save_to_disk", full)
    out = tmp_path / "rl"
    assert r1("data", "import", toy_data / "rl", "--to", out) == 2
    line = one_line(capsys.readouterr().err)
    assert line == (f"error: no space left on device while writing {tmp_path / 'rl.partial'}: free space and run "
                    "the same command again (with --force if it left an OUT.partial/ behind)")
    assert not out.exists()


def test_disk_full_is_told_apart_from_other_errors(tmp_path, monkeypatch):
    from r1cli import artifacts
    from r1cli.artifacts import disk_full

    enospc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "f"))
    assert disk_full(enospc, tmp_path) == tmp_path / "f"
    try:  # wrapped, as datasets and safetensors pass it on
        try:
            raise enospc
        except OSError as e:
            raise RuntimeError("Error while serializing") from e
    except RuntimeError as e:
        assert disk_full(e, tmp_path) == tmp_path / "f"
    assert disk_full(Exception("Error while serializing: I/O error: No space left on device (os error 28)"),
                     tmp_path) == tmp_path
    assert disk_full(RuntimeError("unexpected pos 576 vs 534"), tmp_path) is None  # there is space here
    monkeypatch.setattr(artifacts, "_free_bytes", lambda where: 0)
    assert disk_full(RuntimeError("unexpected pos 576 vs 534"), tmp_path) == tmp_path
    assert disk_full(ValueError("a bug"), tmp_path) is None  # not a write at all
    assert disk_full(KeyboardInterrupt(), tmp_path) is None


# --- Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["coldstart", "grpo"])
def test_ctrl_c_exits_130_with_how_to_resume(procs, toy_base, toy_data, tmp_path, stage):
    """SIGINT to the process group, as a terminal's Ctrl-C sends it (math-verify workers included)."""
    out = tmp_path / "o"
    if stage == "coldstart":
        cmd = r1_cmd("coldstart", "--model", toy_base, "--data", toy_data / "coldstart", *SFT, "--set", "trl.max_steps=400")
    else:  # the accuracy reward's math-verify workers are in the group too
        cmd = r1_cmd("grpo", "--model", toy_base, "--data", toy_data / "rl", *GRPO, "--set", "trl.max_steps=200")
    with open(tmp_path / "stderr", "w+") as err:
        p = start(procs, cmd + ["--out", str(out)], stderr=err)
        wait_until(p, lambda: max(logged_steps(Path(f"{out}.partial") / "metrics.jsonl"), default=0) >= 2)
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=TIMEOUT)
        err.seek(0)
        text = err.read()
    assert p.returncode == 130, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert text.strip().splitlines()[-1] == "interrupted: run the same command with --resume to continue from OUT.partial/"
    assert not out.exists() and Path(f"{out}.partial").is_dir()


# --- 2 processes on CPU (gloo) ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(procs, *args) -> tuple[int, str]:
    """`accelerate launch --config_file recipes/accelerate/ddp_cpu.yaml --num_processes 2 -m r1cli ARGS`
    (on a free port: other test runs may be launching on the same machine)."""
    return run(procs, [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                       ROOT / "recipes/accelerate/ddp_cpu.yaml", "--num_processes", "2",
                       "--main_process_port", free_port(), "-m", "r1cli", *args])


@pytest.mark.multiproc
@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_two_processes(procs, toy_base, toy_data, tmp_path, stage):
    out = tmp_path / "o"
    if stage == "sft":
        code, err = launch(procs, "sft", "--model", toy_base, "--data", toy_data / "coldstart", "--out", out, *SFT,
                           "--set", "trl.max_steps=4")
    else:  # the toy recipe, shortened
        code, err = launch(procs, "grpo", "--model", toy_base, "--data", toy_data / "rl", "--recipe",
                           ROOT / "recipes/toy/grpo.yaml", "--out", out, *GRPO, "--set", "trl.max_steps=3",
                           "--set", "trl.gradient_accumulation_steps=2")  # the recipe's decode loop and micro-batches
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # one finished OUT, no partial left
    m = json.loads((out / "r1.json").read_text())
    assert m["status"] == "finished" and not (out / "trainer").exists()
    rows = train_rows(out)
    assert [r["step"] for r in rows] == list(range(1, m["counts"]["steps"] + 1))  # one writer: no line twice
    if stage == "sft":
        # two ranks, each its own batch of 4: one step covers 8 of the rows
        assert rows[0]["epoch"] == pytest.approx(8 / m["counts"]["rows"], abs=1e-4)
    else:
        assert m["counts"]["completions"] == 3 * 8 * 2 * 2  # steps x rows x micro-batches x processes
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)
