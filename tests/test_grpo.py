"""`r1 grpo` on the toy world: a short real TRL run, telemetry files, and the pre-flight checks."""

import json
import re

import pytest

from r1cli.cli import main

SHORT = ["--set", "trl.max_steps=2", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
         "--set", "trl.max_completion_length=32", "--set", "trl.logging_steps=1", "--set", "samples_every=1",
         "--set", "trl.save_strategy=\"no\""]


@pytest.mark.parametrize("template", ["r1", "r1zero"])
def test_grpo_runs_and_records_telemetry(toy_base, toy_data, tmp_path, template):
    out = tmp_path / template
    recipe = "recipes/toy/grpo.yaml" if template == "r1" else "recipes/toy/r1zero.yaml"
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out), "--recipe", recipe,
          *SHORT])
    m = json.loads((out / "r1.json").read_text())
    assert m["stage"] == "grpo" and m["counts"]["steps"] == 2 and m["config"]["template"] == template
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "reward" in r]
    assert len(steps) == 2
    for key in ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                "entropy", "learning_rate", "rewards/accuracy/mean", "rewards/format/mean", "step_time_s"):
        assert key in steps[-1], key
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and {"accuracy", "format"} <= set(samples[0]["rewards"]) and "completion" in samples[0]
    if template == "r1zero":
        assert samples[0]["prompt"].startswith("Think in <think>")


@pytest.mark.parametrize("extra,msg", [
    (["--set", "trl.num_generations=3"], "divisible by num_generations"),
    (["--set", "trl.max_completion_length=600"], "does not fit the model's context"),
    (["--set", "rewards.code=1"], "reward 'code' needs column 'tests'"),
    (["--set", "rewards.acuracy=1"], "accuracy"),
    (["--set", "trl.use_vllm=true"], "vllm is not installed"),
    (["--set", "prefilled_think=false", "--set", "trl.max_completion_length=32"], None),
])
def test_checks_before_the_first_step(run_r1, toy_base, toy_data, tmp_path, extra, msg):
    out = tmp_path / "o"
    r = run_r1("grpo", "--model", toy_base, "--data", toy_data / "rl", "--out", out, *SHORT[:-2], *extra,
               "--set", "trl.max_steps=1")
    if msg is None:  # the toy template does not pre-fill <think>: prefilled_think=false is fine
        assert r.returncode == 0, r.stderr[-2000:]
        return
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr and re.search(msg, err[0]), r.stderr
    assert not out.exists() and not (tmp_path / "o.partial").exists()


def test_prefilled_template_is_detected(toy_base):
    from transformers import AutoTokenizer

    from r1cli.errors import UserError
    from r1cli.rl import detect_prefilled

    tok = AutoTokenizer.from_pretrained(toy_base)
    assert detect_prefilled(tok, "r1", None, {"format": 1}) is False
    tok.chat_template = tok.chat_template + "{% if add_generation_prompt %}<think>\n{% endif %}"
    assert detect_prefilled(tok, "r1", None, {"format": 1}) is True
    with pytest.raises(UserError, match="pre-fills <think>"):
        detect_prefilled(tok, "r1", False, {"format": 1})
