"""`make serve-rm` on an `r1 rm` checkpoint, in this (the vLLM) venv: vLLM loads the checkpoint as it is as a
classify model, and the helpfulness / harmlessness rewards score the same through its /classify as in-process
(r1cli/rewards/served.py sends the in-process token ids).

    make test-vllm     # or: .venv-vllm/bin/python -m pytest tests/vllm_cpu/test_served_rm.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from datasets import load_from_disk

from test_judge import free_port

REPO = Path(__file__).resolve().parents[2]
BASE_SET = ["num_layers=2", "batch_size=4", "max_length=128", "eval_prompts=0", "attempts=1"]
RM_SET = ["trl.max_steps=4", "trl.per_device_train_batch_size=8", "trl.save_strategy='no'", "trl.learning_rate=1e-3"]


def _r1(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


def _sets(values):
    return [x for s in values for x in ("--set", s)]


@pytest.fixture(scope="module")
def rm_dir(world, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served_rm")
    _r1("toy", "base", root / "base", "--seed", 0, "--steps", 30, *_sets(BASE_SET))
    _r1("rm", "--model", root / "base", "--data", world / "helpful_pairs", "--out", root / "rm", *_sets(RM_SET))
    return root / "rm"


@pytest.fixture(scope="module")
def served(rm_dir, tmp_path_factory):
    """`make serve-rm` with this venv; yields its /v1 URL; the server's process group is stopped afterwards."""
    port, log_path = free_port(), tmp_path_factory.mktemp("serve_log") / "serve-rm.log"
    log = open(log_path, "w")
    cmd = ["make", "-C", str(REPO), "serve-rm", f"RM={rm_dir}", f"PORT={port}", f"VLLM_VENV={Path(sys.prefix)}",
           "SERVE_RM_ARGS=--dtype float32 --enforce-eager --max-model-len 512"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make serve-rm exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:
                    if json.loads(r.read())["data"][0]["id"] == "rm":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("make serve-rm was not ready after 900 s")
            time.sleep(2)
        yield url + "/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make, its shell and vLLM's processes
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_served_rm_scores_as_in_process(world, rm_dir, served):
    from r1cli.rewards.preference import harmlessness, helpfulness

    rows = load_from_disk(str(world / "general_eval")).select(range(8))
    prompts = list(rows["prompt"])
    completions = [f"<think>\nThe user asks something. I answer.\n</think>\nHere is my answer #{i}." for i in range(8)]
    completions[-1] = "<think>\n" + "thinking " * 80  # a CoT that never closes: no summary for helpfulness
    for factory, key in ((helpfulness, "helpful_rm"), (harmlessness, "harmless_rm")):
        local = factory(**{key: str(rm_dir)}, rm_normalization="none")(prompts, completions)
        remote_fn = factory(**{key: served}, rm_normalization="none")
        remote = remote_fn(prompts, completions)
        assert remote == pytest.approx(local, abs=1e-3, rel=1e-3)
        assert remote_fn.served.summary()["failures"] == 0


def test_align_trains_against_rms_served_by_vllm(world, rm_dir, served, tmp_path):
    """r1 align, 2 steps, both reward models at vLLM's server (one checkpoint serves both here): every request
    answered, the per-domain RM rewards logged, the counts in the manifest."""
    out = tmp_path / "align"
    _r1("align", "--model", rm_dir.parent / "base", "--data", world / "rl", "--data", world / "general",
        "--helpful-rm", served, "--harmless-rm", served, "--out", out,
        *_sets(["trl.max_steps=2", "trl.per_device_train_batch_size=8", "trl.num_generations=4",
                "trl.max_completion_length=32", "trl.logging_steps=1", "trl.save_strategy='no'",
                "preference_rewards_from=1", "general_fraction=0.5"]))
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["steps"] == 2
    for name in ("helpfulness", "harmlessness"):
        counts = m["counts"]["rm_http"][name]
        assert counts["requests"] > 0 and counts["failures"] == counts["failed_rows"] == 0
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/helpfulness/general/mean" in r for r in logs)
