"""r1cli.warm (make demo's lanes): an `r1` command run in a fork of the warm process writes what a cold
`r1` writes, passes on its exit code, its output and the signals it gets, and runs cold where it must."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# an `r1` that says whether it ran warm (in a fork of the warm process) or would have run cold
CLIENT = ("import sys; from r1cli import warm; code = warm.run_warm('r1cli.cli:main', sys.argv[1:]); "
          "print('ran', 'cold' if code is None else 'warm', file=sys.stderr); sys.exit(0 if code is None else code)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("warm") / "sock")
    proc = subprocess.Popen([sys.executable, "-m", "r1cli.warm", "--serve", path], env=ENV)
    while not os.path.exists(path):
        assert proc.poll() is None, "the warm process ended before it listened"
        time.sleep(0.05)
    yield path
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def client(server, *args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-c", CLIENT, *map(str, args)], env={**ENV, "R1_WARM": server, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def sft(model, data, out):
    return ["sft", "--model", model, "--data", data, "--out", out, "--set", "trl.max_steps=2",
            "--set", "trl.per_device_train_batch_size=4", "--set", "trl.logging_steps=1", "--force"]


def test_a_warm_stage_trains_the_same_weights_as_a_cold_one(server, toy_base, toy_data, tmp_path):
    cold = subprocess.run([sys.executable, "-m", "r1cli", *sft(toy_base, toy_data / "coldstart", tmp_path / "cold")],
                          env=ENV, capture_output=True, text=True)
    assert cold.returncode == 0, cold.stderr
    warm = client(server, *sft(toy_base, toy_data / "coldstart", tmp_path / "warm"))
    out, err = warm.communicate(timeout=300)
    assert warm.returncode == 0, err
    assert "ran warm" in err
    assert "r1 sft: settings that differ" in out + err  # the fork's output reached the caller's files
    assert (tmp_path / "warm/model.safetensors").read_bytes() == (tmp_path / "cold/model.safetensors").read_bytes()
    metrics = [json.loads((tmp_path / d / "r1.json").read_text())["metrics"] for d in ("cold", "warm")]
    timings = [k for k in metrics[0] if k.endswith(("_s", "_per_second"))]
    assert timings and "train_loss" in metrics[0]
    assert [{k: v for k, v in m.items() if k not in timings} for m in metrics[:1]] == [
        {k: v for k, v in m.items() if k not in timings} for m in metrics[1:]]


def test_bad_input_exits_2_with_its_one_line(server, tmp_path):
    proc = client(server, "grpo", "--model", tmp_path / "missing", "--data", tmp_path, "--out", tmp_path / "out")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "ran warm" in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: --model {tmp_path / 'missing'} does not exist: check the path"]
    assert not (tmp_path / "out").exists()


def test_another_thread_count_or_no_warm_process_runs_cold(server, tmp_path):
    for env in ({"OMP_NUM_THREADS": "2"}, {"R1_WARM": str(tmp_path / "nothing")}, {"R1_WARM": ""}):
        proc = client(server, "--version", env=env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "ran cold" in err, (env, err)


def test_sigterm_to_the_caller_stops_the_command_and_the_warm_process_serves_on(server, toy_base, toy_data, tmp_path):
    out = tmp_path / "long"
    args = sft(toy_base, toy_data / "coldstart", out)
    args[args.index("trl.max_steps=2")] = "trl.max_steps=100000"
    proc = client(server, *args)
    while not (tmp_path / "long.partial").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not out.exists()
    again = client(server, "--version")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "ran warm" in err


def test_the_wrapper_runs_its_command_with_r1_warm_set_and_returns_its_exit_code():
    script = "import os, sys; sys.exit(3 if os.path.exists(os.environ['R1_WARM']) else 1)"
    proc = subprocess.run([sys.executable, "-m", "r1cli.warm", "--", sys.executable, "-c", script], env=ENV, timeout=120)
    assert proc.returncode == 3
    assert subprocess.run([sys.executable, "-m", "r1cli.warm"], env=ENV, capture_output=True).returncode == 2
