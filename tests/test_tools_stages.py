"""Tools from the command line, on the toy world: a cold start on calculator trajectories (tool turns
masked), GRPO with the calculator (tool metrics in metrics.jsonl), eval and reject-sample with it (counts
in the manifest), and the refusals that come before any model loads."""

import json

import pytest

from r1cli.cli import main

SHORT_GRPO = ["--set", "trl.max_steps=2", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
              "--set", "trl.logging_steps=1", "--set", "samples_every=1"]


@pytest.fixture(scope="module")
def tool_coldstart(toy_base, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tools") / "coldstart"
    main(["coldstart", "--model", str(toy_base), "--data", str(toy_data / "coldstart_tools"), "--out", str(out),
          "--recipe", "recipes/toy/coldstart.yaml", "--set", "trl.max_steps=3", "--set", "trl.logging_steps=1"])
    return out


def test_grpo_with_tools_logs_tool_metrics(tool_coldstart, toy_data, tmp_path):
    out = tmp_path / "grpo"
    main(["grpo", "--model", str(tool_coldstart), "--data", str(toy_data / "rl_tools"), "--out", str(out),
          "--recipe", "recipes/toy/grpo_tools.yaml", *SHORT_GRPO])
    steps = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(steps) == 2
    for r in steps:
        assert 0 <= r["tools/call_frequency"] <= 2 and 0 <= r["tools/failure_frequency"] <= 1
    assert json.loads((out / "r1.json").read_text())["config"]["tools"] == ["calculator"]


def test_eval_and_reject_sample_with_tools_count_calls(tool_coldstart, toy_data, tmp_path):
    ev = tmp_path / "eval"
    main(["eval", "--model", str(tool_coldstart), "--data", str(toy_data / "eval_tools"), "--out", str(ev),
          "--recipe", "recipes/toy/eval_tools.yaml", "--limit", "8", "--k", "2"])
    m = json.loads((ev / "r1.json").read_text())
    assert {"tool_calls", "tool_failures"} <= set(m["counts"])
    assert m["metrics"]["tool_call_rate"] == m["counts"]["tool_calls"] / 16
    from datasets import load_from_disk

    rows = load_from_disk(str(ev))
    assert sum(rows["tool_calls"]) == m["counts"]["tool_calls"]
    rs = tmp_path / "rs"
    main(["reject-sample", "--model", str(tool_coldstart), "--data", str(toy_data / "rl_tools"), "--out", str(rs),
          "--recipe", "recipes/toy/reject_sample.yaml", "--set", "tools=[calculator]", "--set", "limit=8", "--set", "n=2"])
    m = json.loads((rs / "r1.json").read_text())
    assert m["counts"]["samples"] == 16 and "tool_calls" in m["counts"] and "tool_call_rate" in m["metrics"]
    for row in load_from_disk(str(rs)):  # a kept trajectory: assistant and tool turns, the tool turn holds the result
        roles = [x["role"] for x in row["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant" and set(roles[1:]) <= {"assistant", "tool"}


@pytest.mark.parametrize("extra,msg", [
    (["--set", "tools=[nope]"], "tools[0] is no built-in tool"),
    (["--set", "tools=[os.path:nothing_here]"], "names nothing"),
    (["--set", "tools=[calculator]", "--template", "r1zero"], "need the r1 template"),
])
def test_bad_tools_exit_2_before_loading(run_r1, toy_base, toy_data, tmp_path, extra, msg):
    r = run_r1("eval", "--model", toy_base, "--data", toy_data / "eval", "--out", tmp_path / "e", *extra)
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_a_template_without_tool_calls_is_refused(run_r1, toy_base, toy_data, tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(toy_base, model)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    (model / "chat_template.jinja").unlink(missing_ok=True)
    r = run_r1("eval", "--model", model, "--data", toy_data / "eval_tools", "--out", tmp_path / "e",
               "--recipe", "recipes/toy/eval_tools.yaml")
    assert r.returncode == 2 and "cannot express tool calls" in r.stderr, r.stderr


def test_grpo_tools_without_the_decode_loop_needs_a_template_trl_parses(run_r1, toy_base, toy_data, tmp_path):
    """TRL's own tool loop (vLLM, or decode_loop off) parses replies through a response template it sets only
    for chat templates it knows: the toy tokenizer brings its own; without it the run is refused before the
    model loads."""
    import shutil

    model = tmp_path / "m"
    shutil.copytree(toy_base, model)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    assert cfg.pop("response_template")
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    r = run_r1("grpo", "--model", model, "--data", toy_data / "rl_tools", "--out", tmp_path / "g",
               "--recipe", "recipes/toy/grpo_tools.yaml", "--set", "decode_loop=false")
    assert r.returncode == 2 and "TRL's tool loop" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "g").exists()
