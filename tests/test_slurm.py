"""The SLURM recipes (recipes/slurm/), rendered: each script runs under bash with stand-ins for
scontrol, srun, sbatch and r1 that record what they were asked to run. No cluster here, so this
is a dry run: it proves the commands the scripts build name files that exist and options that
`accelerate launch`, `trl vllm-serve` and r1 accept (each r1 command line parsed by r1's own click
app), not that a cluster runs them.

    pytest tests/test_slurm.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from r1cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "recipes/slurm"

STUB = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps([name] + sys.argv[1:]) + "\\n")
if name == "scontrol":
    print("\\n".join(os.environ["STUB_NODES"].split(",")))
elif name == "sbatch":
    print(1000 + sum(1 for _ in open(os.environ["STUB_LOG"])))
"""


@pytest.fixture
def cluster(tmp_path):
    """run(script, *args, nodes=..., env=...) -> the commands the stand-ins recorded, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("scontrol", "srun", "sbatch", "r1"):
        (bin_dir / name).write_text(STUB.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(script: str, *args, nodes: int = 1, env: dict | None = None) -> list[list[str]]:
        log.write_text("")
        names = [f"gpu{i:03d}" for i in range(1, nodes + 1)]
        full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
                    "STUB_NODES": ",".join(names), "SLURM_JOB_NODELIST": f"gpu[001-{nodes:03d}]", **(env or {})}
        p = subprocess.run(["bash", SLURM / script, *map(str, args)], cwd=ROOT, env=full_env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return [json.loads(x) for x in log.read_text().splitlines()]

    return run


def r1_params(argv: list[str]) -> dict:
    """Parse an `r1 ...` command line with r1's own click app: an unknown option, a missing required
    one or a bad value raises. Returns the parsed parameters of the (sub)command."""
    cmd, ctx, name = typer.main.get_command(app), None, "r1"
    args = list(argv)
    while hasattr(cmd, "get_command") and args and not args[0].startswith("-"):  # a group: descend
        ctx = cmd.make_context(name, [args[0]], resilient_parsing=True, parent=ctx)
        name, cmd, args = args[0], cmd.get_command(ctx, args[0]), args[1:]
        assert cmd is not None, f"r1 has no command {name}"
    return cmd.make_context(name, args, parent=ctx).params


def accelerate_args(words: list[str]):
    from accelerate.commands.launch import launch_command_parser

    assert words[:2] == ["accelerate", "launch"]
    return launch_command_parser().parse_args(words[2:])  # argparse exits on an unknown option


def trl_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check_sets(params: dict) -> None:
    """Every --set trl.X the scripts add is a field of TRL's GRPOConfig."""
    from trl import GRPOConfig

    for item in params.get("set_") or params.get("set") or []:
        key = item.split("=", 1)[0]
        if key.startswith("trl."):
            assert key[4:] in trl_fields(GRPOConfig), key


def training_launch(call: list[str], rank: int = 0) -> list[str]:
    """The words one srun task runs: `bash -c "accelerate launch ... --machine_rank $SLURM_PROCID -m r1cli ..."`."""
    assert call[-3:-1] == ["bash", "-c"], call
    return shlex.split(call[-1].replace("$SLURM_PROCID", str(rank)))


def test_train_on_four_nodes(cluster):
    calls = cluster("train.slurm", "sft", "runs/qwen/base", "runs/qwen/rs_all", "runs/qwen/sft",
                    "recipes/qwen2.5-math-7b/sft.yaml", "--set", "trl.max_steps=100", nodes=4)
    sruns = [c for c in calls if c[0] == "srun"]
    assert len(sruns) == 1 and "--nodes=4" in sruns[0] and "--nodelist=gpu001,gpu002,gpu003,gpu004" in sruns[0]
    words = training_launch(sruns[0], rank=2)
    a = accelerate_args(words)
    assert (ROOT / a.config_file).is_file()
    assert (a.num_machines, a.num_processes, a.machine_rank, a.main_process_ip) == (4, 32, 2, "gpu001")
    assert a.module and a.training_script == "r1cli"
    p = r1_params(a.training_script_args)
    assert a.training_script_args[0] == "sft" and (ROOT / p["recipe"]).is_file()
    assert str(p["out"]) == "runs/qwen/sft" and not p["resume"]


def test_grpo_with_a_vllm_server_node(cluster):
    calls = cluster("train.slurm", "grpo", "runs/qwen/coldstart", "runs/qwen/data/rl", "runs/qwen/grpo",
                    "recipes/qwen2.5-math-7b/grpo.yaml", nodes=5, env={"VLLM_SERVER": "1", "VLLM_TP": "2"})
    sruns = [c for c in calls if c[0] == "srun"]  # the server's runs in the background: either may log first
    (serve,) = [c for c in sruns if "trl" in c]
    (train,) = [c for c in sruns if "trl" not in c]
    # the last node serves vLLM: `trl vllm-serve` with options its ScriptArguments has
    assert "--nodelist=gpu005" in serve
    trl_cmd = serve[serve.index("trl"):]
    assert trl_cmd[1] == "vllm-serve"
    from trl.scripts.vllm_serve import ScriptArguments

    opts = {w[2:] for w in trl_cmd[2:] if w.startswith("--")}
    assert opts <= trl_fields(ScriptArguments) and "model" in opts
    assert trl_cmd[trl_cmd.index("--model") + 1] == "runs/qwen/coldstart"
    assert trl_cmd[trl_cmd.index("--tensor_parallel_size") + 1] == "2"
    # the other four train, 8 GPUs each, and ask that node for completions
    assert "--nodes=4" in train and "gpu005" not in train[train.index("--nodes=4") + 2]
    a = accelerate_args(training_launch(train))
    assert (a.num_machines, a.num_processes) == (4, 32)
    p = r1_params(a.training_script_args)
    check_sets(p)
    sets = p.get("set_") or p.get("set")
    assert {"trl.vllm_mode=server", "trl.vllm_server_host=gpu005", "trl.use_vllm=true"} <= set(sets)
    assert (ROOT / p["recipe"]).is_file()


def test_requeued_training_resumes(cluster):
    calls = cluster("train.slurm", "sft", "m", "d", "o", "recipes/qwen2.5-math-7b/sft.yaml", nodes=2,
                    env={"SLURM_RESTART_COUNT": "1"})
    a = accelerate_args(training_launch(calls[-1]))
    assert r1_params(a.training_script_args)["resume"]


def test_reject_sample_array_then_merge(cluster):
    calls = cluster("reject_sample.sh", "runs/qwen/grpo", "runs/qwen/data/rl", "runs/qwen/rs",
                    "recipes/qwen2.5-math-7b/reject_sample.yaml", "--judge-url", "http://judge:8000/v1",
                    env={"SHARDS": "8"})
    array, merge = [c for c in calls if c[0] == "sbatch"]
    assert "--array=0-7" in array
    script = Path(next(w for w in array if w.endswith(".slurm")))
    assert script.is_file() and script.resolve() == (SLURM / "reject_sample.slurm").resolve()
    job = 1001  # the array's id, as sbatch --parsable printed it
    assert f"--dependency=afterok:{job}" in merge
    wrapped = shlex.split(merge[merge.index("--wrap") + 1])
    assert wrapped[0] == "r1"
    p = r1_params(wrapped[1:])
    assert [str(x) for x in p["paths"]] == [f"runs/qwen/rs-shard{i}" for i in range(8)]
    assert str(p["to"]) == "runs/qwen/rs"

    # what array task 3 of 8 runs: the shard the merge expects
    args = array[array.index(str(script)) + 1:]
    calls = cluster("reject_sample.slurm", *args, env={"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"})
    (r1,) = calls
    p = r1_params(r1[1:])
    assert r1[1] == "reject-sample" and (p["num_shards"], p["shard_index"]) == (8, 3)
    assert str(p["out"]) == "runs/qwen/rs-shard3" and (ROOT / p["recipe"]).is_file()
    assert p["judge_url"] == "http://judge:8000/v1"
