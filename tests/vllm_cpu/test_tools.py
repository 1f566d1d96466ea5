"""`r1 eval --backend vllm` with tools: the same tool loop (r1cli/tools/loop.py) over vLLM's generator
agrees with the transformers backend, as plain eval does (test_generation.py)."""

import json
import math
from pathlib import Path

import pytest

from test_generation import eval_rows, per_prompt_pass

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tool_solver(solver, world, tmp_path_factory) -> Path:
    """The solver's toy base, cold-started on the world's calculator trajectories: it calls the calculator."""
    from r1cli.cli import main

    out = tmp_path_factory.mktemp("vtools") / "coldstart"
    main([str(a) for a in ("coldstart", "--model", Path(solver).parent / "base", "--data", world / "coldstart_tools",
                           "--out", out, "--recipe", REPO / "recipes/toy/coldstart.yaml")])
    return out


def test_eval_with_tools_vllm_agrees_with_transformers(tool_solver, world, tmp_path, run_r1, r1_shared_vllm):
    common = ["--model", tool_solver, "--data", world / "eval_tools", "--recipe", REPO / "recipes/toy/eval_tools.yaml",
              "--seed", 0]
    res = r1_shared_vllm("eval", *common, "--out", tmp_path / "vllm", "--backend", "vllm")
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_r1("eval", *common, "--out", tmp_path / "hf", "--backend", "transformers", timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    vrows, hrows = eval_rows(tmp_path / "vllm"), eval_rows(tmp_path / "hf")
    mv, mh = (json.loads((tmp_path / d / "r1.json").read_text())["metrics"] for d in ("vllm", "hf"))
    print(f"pass@1 vllm {mv['pass@1']:.3f} transformers {mh['pass@1']:.3f}; tool calls / sample "
          f"{mv['tool_call_rate']:.2f} vs {mh['tool_call_rate']:.2f}")
    assert mh["tool_call_rate"] > 0.5, "the checkpoint must call the calculator for the loops to be compared"
    assert abs(mv["tool_call_rate"] - mh["tool_call_rate"]) < 0.1
    pv, ph = per_prompt_pass(vrows), per_prompt_pass(hrows)
    n = len(pv)
    d = [a - b for a, b in zip(pv, ph)]
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
    assert abs(mean) <= 4 * max(se, 1e-3), (mv["pass@1"], mh["pass@1"], se)
    assert all(r["tool_calls"] >= 0 and r["tool_failures"] <= r["tool_calls"] for r in vrows)
