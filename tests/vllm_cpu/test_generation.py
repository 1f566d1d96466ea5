"""The vllm generation backend on the CPU: `r1 eval --backend vllm` and `r1 reject-sample --backend vllm`
on the cold-started toy checkpoint. Rows are well-formed, a seed reproduces its rows, and vLLM's
pass@1 agrees with the transformers backend's on the same checkpoint and prompts."""

from __future__ import annotations

import json
import math
from pathlib import Path

from datasets import load_from_disk

REPO = Path(__file__).resolve().parents[2]

MAX_NEW = 96  # a toy CoT + answer is ~60-90 characters, one token each
K = 4


def eval_rows(out: Path) -> list[dict]:
    return load_from_disk(str(out)).to_list()


def check_rows(rows: list[dict], n_prompts: int, k: int) -> None:
    assert len(rows) == n_prompts * k
    assert [r["sample_index"] for r in rows] == list(range(k)) * n_prompts
    for r in rows:
        assert isinstance(r["completion"], str)
        assert 1 <= r["num_tokens"] <= MAX_NEW, r
        assert r["finish_reason"] in ("stop", "length"), r
        # a completion stops on eos (counted in its tokens) or at the cap: a cut one has exactly the cap
        assert r["finish_reason"] == "stop" or r["num_tokens"] == MAX_NEW, r


def per_prompt_pass(rows: list[dict]) -> list[float]:
    groups: dict = {}
    for i, r in enumerate(rows):
        groups.setdefault(i // K, []).append(r["reward_accuracy"])
    return [sum(v) / len(v) for _, v in sorted(groups.items())]


def test_eval_vllm_rows_seed_and_pass_at_1_agree_with_transformers(solver, world, tmp_path, run_r1, r1_shared_vllm):
    """vLLM's rows are well-formed, a seed reproduces them in a fresh process, and vLLM's pass@1 on the
    cold-started checkpoint (pass@1 must be above 0.2) equals the transformers backend's within 4 standard
    errors of the paired per-prompt difference (500 prompts x 4 samples, T 0.6)."""
    common = ["--model", solver, "--data", world / "eval", "--k", K, "--max-new-tokens", MAX_NEW,
              "--temperature", 0.6, "--top-p", 0.95, "--seed", 0]
    res = r1_shared_vllm("eval", *common, "--out", tmp_path / "vllm", "--backend", "vllm")
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_r1("eval", *common, "--out", tmp_path / "hf", "--backend", "transformers", timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    vrows, hrows = eval_rows(tmp_path / "vllm"), eval_rows(tmp_path / "hf")
    n = len(load_from_disk(str(world / "eval")))
    check_rows(vrows, n, K)
    check_rows(hrows, n, K)
    # the k samples of a prompt differ (each prompt and sample index has its own random stream)
    distinct = sum(len({r["completion"] for r in vrows[i:i + K]}) > 1 for i in range(0, len(vrows), K))
    assert distinct > n // 2

    # pass@1 agrees within sampling noise. Paired by prompt (the same 500 prompts, 4 samples each):
    # d_i = per-prompt pass rate under vLLM - under transformers; the two means may differ by at most
    # 4 standard errors of mean(d) (a false alarm about 1 time in 16,000), measured from the runs.
    pv, ph = per_prompt_pass(vrows), per_prompt_pass(hrows)
    d = [a - b for a, b in zip(pv, ph)]
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
    p_vllm, p_hf = sum(pv) / n, sum(ph) / n
    print(f"pass@1 vllm {p_vllm:.3f} transformers {p_hf:.3f} difference {mean:+.3f} (se {se:.3f})")
    assert p_hf > 0.2, "the checkpoint must solve problems for pass@1 to be compared"
    assert abs(mean) <= 4 * se, (p_vllm, p_hf, se)
    # the metrics vLLM's run wrote are those of its rows
    metrics = json.loads((tmp_path / "vllm" / "r1.json").read_text())["metrics"]
    assert abs(metrics["pass@1"] - p_vllm) < 1e-9
    mean_tokens = [sum(r["num_tokens"] for r in rows) / len(rows) for rows in (vrows, hrows)]
    assert abs(mean_tokens[0] - mean_tokens[1]) < 0.1 * mean_tokens[1], mean_tokens

    # the same seed reproduces the same rows: again on the first 40 prompts, in a fresh process and engine
    # (a prompt's samples depend on the seed and its position, not on the batch around it)
    res = run_r1("eval", *common, "--out", tmp_path / "again", "--backend", "vllm", "--limit", 40, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    again = eval_rows(tmp_path / "again")
    keys = ("completion", "num_tokens", "finish_reason", "reward_accuracy")
    assert [[r[c] for c in keys] for r in again] == [[r[c] for c in keys] for r in vrows[:40 * K]]


def test_reject_sample_vllm_rows_and_seed(solver, world, tmp_path, r1_shared_vllm):
    args = ["--model", solver, "--data", world / "rl", "--recipe", REPO / "recipes/toy/reject_sample.yaml",
            "--backend", "vllm", "--n", 4, "--seed", 3, "--set", "limit=48", "--set", f"sampling.max_new_tokens={MAX_NEW}"]
    for out in ("a", "b"):
        res = r1_shared_vllm("reject-sample", *args, "--out", tmp_path / out)
        assert res.returncode == 0, res.stderr[-3000:]
    a, b = load_from_disk(str(tmp_path / "a")).to_list(), load_from_disk(str(tmp_path / "b")).to_list()
    assert a, "a checkpoint that solves problems keeps some samples"
    assert a == b
    stats = json.loads((tmp_path / "a" / "r1.json").read_text())
    for r in a:
        assert r["messages"][-1]["role"] == "assistant" and "</think>" in r["messages"][-1]["content"]
        assert 1 <= r["num_tokens"] <= MAX_NEW
        assert r["verifier"] == "accuracy"
    assert stats["counts"]["accepted"] == len(a)
