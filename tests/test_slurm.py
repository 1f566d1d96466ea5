"""The SLURM recipes (recipes/slurm/), rendered: each script runs under bash with stand-ins for
scontrol, srun, sbatch and r1. Most tests are dry runs: the stand-ins record what they were asked
to run, which proves the commands the scripts build name files that exist and options that
`accelerate launch`, `trl vllm-serve` and r1 accept (each r1 command line parsed by r1's own click
app), not that a cluster runs them. test_reject_sample_array_then_merge runs for real on this
machine: its sbatch runs each job at once (an array's tasks one after another) and r1 is r1.

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
from datasets import load_from_disk

from r1cli.cli import app, main
from test_reject_sample import rows_of, world  # noqa: F401 (the tiny reasoner and its prompts: a module fixture)

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


# sbatch on one machine: records the call, runs the job at once in the foreground (an array's tasks one
# after another, each with its SLURM_ARRAY_* variables; --wrap under bash), then prints a job id as
# --parsable does. The job's output goes to stderr: stdout is the id the submitting script reads. A task
# that fails fails the submission, as afterok would hold back what depends on it.
LOCAL_SBATCH = """#!{python}
import json, os, subprocess, sys
args, opts, wrap, i = sys.argv[1:], {{}}, None, 0
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps(["sbatch"] + args) + "\\n")
while i < len(args) and args[i].startswith("--"):
    if args[i] == "--wrap":
        wrap, i = args[i + 1], i + 2
        continue
    key, _, value = args[i][2:].partition("=")
    opts[key], i = value, i + 1
if wrap is not None:
    jobs = [(["bash", "-c", wrap], {{}})]
elif "array" in opts:
    lo, hi = map(int, opts["array"].split("-"))
    jobs = [(["bash", *args[i:]], {{"SLURM_ARRAY_TASK_ID": str(t), "SLURM_ARRAY_TASK_COUNT": str(hi - lo + 1)}})
            for t in range(lo, hi + 1)]
else:
    jobs = [(["bash", *args[i:]], {{}})]
for cmd, env in jobs:
    subprocess.run(cmd, env={{**os.environ, **env}}, stdout=sys.stderr, check=True)
print(1000 + sum(1 for _ in open(os.environ["STUB_LOG"])))
"""
R1 = """#!/bin/bash
exec {python} -m r1cli "$@"
"""


def stand_ins(tmp_path, scripts: dict[str, str]):
    """run(script, *args, nodes=..., env=...) -> the commands the stand-ins recorded, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in scripts.items():
        (bin_dir / name).write_text(text.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(script: str, *args, nodes: int = 1, env: dict | None = None) -> list[list[str]]:
        log.write_text("")
        names = [f"gpu{i:03d}" for i in range(1, nodes + 1)]
        full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
                    "STUB_NODES": ",".join(names), "SLURM_JOB_NODELIST": f"gpu[001-{nodes:03d}]", **(env or {})}
        p = subprocess.run(["bash", SLURM / script, *map(str, args)], cwd=ROOT, env=full_env, capture_output=True,
                           text=True, timeout=600)  # a hang guard: the local runs take seconds
        assert p.returncode == 0, p.stderr[-3000:]
        return [json.loads(x) for x in log.read_text().splitlines()]

    return run


@pytest.fixture
def cluster(tmp_path):
    """Dry: every stand-in records its call and runs nothing."""
    return stand_ins(tmp_path, {name: STUB for name in ("scontrol", "srun", "sbatch", "r1")})


@pytest.fixture
def local_cluster(tmp_path):
    """For real, on this machine: sbatch runs its jobs (LOCAL_SBATCH) and r1 is `python -m r1cli`."""
    return stand_ins(tmp_path, {"sbatch": LOCAL_SBATCH, "r1": R1})


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


def test_train_launch_for_four_nodes(cluster):
    """The one srun task per node and the accelerate launch each runs, as train.slurm builds them for 4 nodes."""
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


def test_requeued_training_adds_resume(cluster):
    """A requeued job (SLURM_RESTART_COUNT > 0) passes --resume to r1; that r1 resumes is test_resume.py's."""
    calls = cluster("train.slurm", "sft", "m", "d", "o", "recipes/qwen2.5-math-7b/sft.yaml", nodes=2,
                    env={"SLURM_RESTART_COUNT": "1"})
    a = accelerate_args(training_launch(calls[-1]))
    assert r1_params(a.training_script_args)["resume"]


def test_reject_sample_submits_an_array_and_a_merge(cluster):
    """The 8-task array, the merge that waits for it, and what one task runs (dry: the stand-ins record)."""
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


def test_reject_sample_array_then_merge(local_cluster, world, tmp_path):
    """reject_sample.sh for real: sbatch runs the array's 2 tasks (reject_sample.slurm -> r1 reject-sample,
    one shard each) and then the merge, on the tiny reasoner of test_reject_sample.py and its 8 prompts;
    the merged rows are those of one unsharded run."""
    out = tmp_path / "rs"
    sets = ["--set", "n=2", "--set", "chunk_size=2", "--set", "sampling.max_new_tokens=64",
            "--set", "verifier_general=rule"]
    recipe = ROOT / "recipes/toy/reject_sample.yaml"
    calls = local_cluster("reject_sample.sh", world["model"], world["data"], out, recipe, *sets,
                          env={"SHARDS": "2", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert [c[0] for c in calls] == ["sbatch", "sbatch"]
    # each task wrote its shard: 4 chunks of 2 prompts, chunks c % 2 == i in shard i
    for i in range(2):
        m = json.loads((tmp_path / f"rs-shard{i}" / "r1.json").read_text())
        assert m["status"] == "finished" and m["counts"]["shard"] == f"{i}/2" and m["counts"]["prompts"] == 4
    merged = json.loads((out / "r1.json").read_text())
    assert merged["stage"] == "data-merge" and merged["status"] == "finished"
    assert merged["config"]["sources"] == [str(tmp_path / f"rs-shard{i}") for i in range(2)]
    main(["reject-sample", "--model", str(world["model"]), "--data", str(world["data"]), "--out",
          str(tmp_path / "whole"), "--recipe", str(recipe), *sets])
    whole = load_from_disk(str(tmp_path / "whole"))
    assert len(whole) > 0 and rows_of(load_from_disk(str(out))) == rows_of(whole)


def test_align_with_served_reward_models(cluster):
    """align_served.slurm on 3 nodes: the last serves both RMs with vLLM's pooling runner, the script waits until
    both list their model (here two stand-in servers on this machine, the RM node being 127.0.0.1), then the
    other two train with --helpful-rm / --harmless-rm pointing at them."""
    from fake_rm_server import FakeRM

    with FakeRM() as helpful, FakeRM() as harmless:
        calls = cluster("align_served.slurm", "runs/qwen/sft", "runs/qwen/data/rl", "runs/qwen/data/general",
                        "runs/qwen/rm_helpful", "runs/qwen/rm_harmless", "runs/qwen/align",
                        "recipes/qwen2.5-math-7b/align_served.yaml", nodes=3,
                        env={"STUB_NODES": "gpu001,gpu002,127.0.0.1", "HELPFUL_PORT": str(helpful.port),
                             "HARMLESS_PORT": str(harmless.port)})
    sruns = [c for c in calls if c[0] == "srun"]
    (serve,) = [c for c in sruns if "--nodelist=127.0.0.1" in c]
    (train,) = [c for c in sruns if c is not serve]
    servers = serve[-1].split(" & ")[:2]
    for gpu, (rm, port) in enumerate((("runs/qwen/rm_helpful", helpful.port), ("runs/qwen/rm_harmless", harmless.port))):
        words = shlex.split(servers[gpu])
        assert words[0] == f"CUDA_VISIBLE_DEVICES={gpu}" and words[1:4] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
        opts = dict(zip(words[4::2], words[5::2]))
        assert opts == {"--model": rm, "--served-model-name": "rm", "--host": "127.0.0.1", "--port": str(port),
                        "--runner": "pooling", "--convert": "classify"}
    assert "--nodes=2" in train and "--nodelist=gpu001,gpu002" in train
    a = accelerate_args(training_launch(train))
    assert (a.num_machines, a.num_processes, a.main_process_ip) == (2, 16, "gpu001")
    p = r1_params(a.training_script_args)
    assert a.training_script_args[0] == "align" and (ROOT / p["recipe"]).is_file()
    assert [str(d) for d in p["data"]] == ["runs/qwen/data/rl", "runs/qwen/data/general"]
    assert (p["helpful_rm"], p["harmless_rm"]) == (f"http://127.0.0.1:{helpful.port}/v1",
                                                   f"http://127.0.0.1:{harmless.port}/v1")
    assert str(p["out"]) == "runs/qwen/align"
    from r1cli.config import AlignConfig
    from r1cli.recipe import resolve

    cfg = resolve(AlignConfig, ROOT / p["recipe"], [], stage="align")  # the recipe the script names validates
    assert cfg.rm_http.served_model == "rm"  # the name the script serves
