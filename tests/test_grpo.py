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
    (["--set", "trl.max_completion_length=600"], "trl.max_completion_length=600 leaves no room for a prompt in the "
                                                  "model's 512-token context"),
    (["--set", "trl.learning_rate=-1e-5"], "trl.learning_rate must be >= 0"),
    (["--set", "trl.max_grad_norm=-1"], "trl.max_grad_norm must be >= 0"),
    (["--set", "trl.num_train_epochs=-2", "--set", "trl.max_steps=-1"], "trl.num_train_epochs must be >= 0"),
    (["--set", "rewards.code=1"], "reward 'code' needs column 'tests'"),
    (["--set", "rewards.acuracy=1"], "accuracy"),
    (["--set", "trl.use_vllm=true"], "vllm is not installed"),
    (["--set", "decode_loop=true", "--set", "trl.top_k=5"], "decode_loop samples with temperature and top-p only.*trl.top_k"),
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

    from r1cli.config import GRPOStageConfig
    from r1cli.errors import UserError
    from r1cli.templates import prefilled_think
    from r1cli.training.grpo import load_tokenizer

    tok = AutoTokenizer.from_pretrained(toy_base)
    assert prefilled_think(tok, "r1") is False
    tok.chat_template = tok.chat_template + "{% if add_generation_prompt %}<think>\n{% endif %}"
    assert prefilled_think(tok, "r1") is True
    assert prefilled_think(tok, "r1zero") is False  # a plain-text prompt never pre-fills
    tok.save_pretrained(toy_base.parent / "prefills")
    assert load_tokenizer(GRPOStageConfig(), toy_base.parent / "prefills")[1] is True
    with pytest.raises(UserError, match="pre-fills <think>"):
        load_tokenizer(GRPOStageConfig(prefilled_think=False), toy_base.parent / "prefills")


def test_micro_batches_by_length_hold_every_row_once_without_its_padding():
    import torch

    from r1cli.training.micro_batches import split

    # 6 rows: prompts left-padded to 5, completions right-padded to 4 (real lengths below)
    p_len, c_len = [5, 1, 3, 2, 5, 1], [4, 1, 2, 1, 3, 2]
    prompt_mask = torch.tensor([[0] * (5 - n) + [1] * n for n in p_len])
    completion_mask = torch.tensor([[1] * n + [0] * (4 - n) for n in c_len])
    batch = {"prompt_ids": prompt_mask * torch.arange(1, 7)[:, None], "prompt_mask": prompt_mask,
             "completion_ids": completion_mask * torch.arange(11, 17)[:, None], "completion_mask": completion_mask,
             "advantages": torch.arange(6.0), "num_items_in_batch": torch.tensor(13), "prompts": list("abcdef")}
    parts = split(batch, 3)
    rows = [r for p in parts for r in p["prompts"]]
    assert sorted(rows) == list("abcdef") and len(parts) == 3
    totals = [[p_len[ord(r) - 97] + c_len[ord(r) - 97] for r in p["prompts"]] for p in parts]
    assert [t for part in totals for t in part] == sorted(t for part in totals for t in part)  # shortest first
    for p in parts:
        i = [ord(r) - 97 for r in p["prompts"]]
        assert p["prompt_ids"].size(1) == max(p_len[j] for j in i) and p["completion_ids"].size(1) == max(c_len[j] for j in i)
        assert p["prompt_mask"].sum(1).tolist() == [p_len[j] for j in i]  # no real token lost
        assert p["completion_mask"].sum(1).tolist() == [c_len[j] for j in i]
        assert p["advantages"].tolist() == [float(j) for j in i] and int(p["num_items_in_batch"]) == 13


def test_micro_batch_by_length_is_the_same_first_step(toy_base, toy_data, tmp_path, monkeypatch):
    """The same generated batch as 2 length-sorted micro-batches gives TRL's loss and gradient norm."""
    from r1cli.training import micro_batches

    widths = []  # (batch's completion width, the micro-batches' widths) for each split made

    def spy(batch, parts):
        out = split(batch, parts)
        widths.append((batch["completion_ids"].size(1), [p["completion_ids"].size(1) for p in out]))
        return out

    split = micro_batches.split
    monkeypatch.setattr(micro_batches, "split", spy)

    def first_step(out, extra):
        main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out), "--recipe",
              "recipes/toy/grpo.yaml", *SHORT, "--set", "trl.max_steps=1", *extra])
        rec = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        return next(r for r in rec if "grad_norm" in r)

    whole = first_step(tmp_path / "whole", ["--set", "micro_batch_by_length=false",
                                            "--set", "trl.gradient_accumulation_steps=1"])
    split_ = first_step(tmp_path / "split", ["--set", "micro_batch_by_length=true", "--set",
                                             "trl.per_device_train_batch_size=4", "--set", "trl.gradient_accumulation_steps=2"])
    assert json.loads((tmp_path / "split" / "r1.json").read_text())["config"]["micro_batch_by_length"] is True
    assert len(widths) == 1 and len(widths[0][1]) == 2 and max(widths[0][1]) == widths[0][0], widths
    assert split_["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-4)
    assert split_["loss"] == pytest.approx(whole["loss"], rel=1e-4, abs=1e-6)


def test_rollout_groups_are_runs_of_one_prompt():
    from r1cli.training.rollouts import groups

    assert groups([[1, 2]] * 4 + [[3]] * 4) == 4
    assert groups([[1], [2], [3]]) == 1
    assert groups([[1], [1], [2]]) == 1  # runs of unequal size: no sharing, one row per prompt copy
    assert groups([[5, 6]] * 3) == 3


def test_decode_loop_rollouts_are_trls_rollouts_when_greedy(tmp_path):
    """The rollout_func returns what TRL's generate path returns (ids up to and including the first eos, in row
    order), compared greedy so that both must pick the same tokens."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from r1cli.training.rollouts import decode_rollout
    from tiny_lm import save_tiny

    model = save_tiny(tmp_path / "tiny")  # random, sharp logits: varied greedy rows
    tok = AutoTokenizer.from_pretrained(model)
    texts = [f"<|user|>{q}\n<|assistant|>" for q in ("What is 3+4?", "2*5", "hi", "Tom has 7 apples", "计算 8+9", "red?")]
    prompts = [t for t in texts for _ in range(4)]
    args = GRPOConfig(output_dir=str(tmp_path / "o"), use_cpu=True, report_to=[], per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=40, temperature=1.0)
    trainers = {}
    for name, rollout_func in (("trl", None), ("decode_loop", decode_rollout)):
        trainers[name] = GRPOTrainer(model=str(model), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                                     args=args, train_dataset=Dataset.from_list([{"prompt": "x"}] * 4), processing_class=tok,
                                     rollout_func=rollout_func)
        trainers[name].generation_config.do_sample = False  # TRL's generate, greedy
        trainers[name].temperature = 0.0  # the decode loop, greedy
    # a random model rarely writes its eos: end the completions at a token some greedy rows write early, others
    # late or never, so the rows stop at different steps
    prompt_ids = trainers["trl"]._tokenize_prompts(prompts)[0]
    free = trainers["trl"]._generate_single_turn(prompt_ids, None, {}, 4)[0]
    eos = max({t for ids in free for t in ids if any(t not in x for x in free)},
              key=lambda t: len({ids.index(t) for ids in free if t in ids}))
    for trainer in trainers.values():
        trainer.eos_token_ids, trainer.generation_config.eos_token_id = [eos], [eos]
    out = {"trl": trainers["trl"]._generate_single_turn(prompt_ids, None, {}, 4)}
    rollout = decode_rollout(prompts, trainers["decode_loop"])
    out["decode_loop"] = (rollout["completion_ids"], rollout["logprobs"])
    assert rollout["prompt_ids"] == prompt_ids and out["trl"][1] is None and out["decode_loop"][1] is None
    out = {name: ids for name, (ids, _) in out.items()}
    assert out["decode_loop"] == out["trl"]
    assert all(eos not in ids[:-1] for ids in out["trl"]) and any(ids[-1] == eos for ids in out["trl"])
    assert len({len(ids) for ids in out["trl"]}) > 1  # rows of different lengths: the truncation is exercised


def test_decode_loop_trains_from_the_command_line(toy_base, toy_data, tmp_path, monkeypatch):
    from r1cli.generation import decode as decode_module

    calls = []  # (prompts, n) of every decode call

    def spy(model, prompts, **kw):
        calls.append((len(prompts), kw["n"]))
        return decode(model, prompts, **kw)

    decode = decode_module.decode
    monkeypatch.setattr(decode_module, "decode", spy)  # rollouts.decode_rollout imports it at each call
    out = tmp_path / "o"
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out), "--recipe",
          "recipes/toy/grpo.yaml", *SHORT, "--set", "decode_loop=true"])
    # two steps of 32 rows (8 a micro-batch x the recipe's 4): 8 prompts x 4 generations, each prompt prefilled once
    assert calls == [(8, 4), (8, 4)]
    m = json.loads((out / "r1.json").read_text())
    assert m["config"]["decode_loop"] is True and m["counts"]["steps"] == 2
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and all("completion" in s for s in samples) and any(s["completion"] for s in samples)


def test_every_trl_private_method_the_trainer_relies_on_keeps_its_signature():
    """R1GRPOTrainer overrides (or calls) a few of TRL's private methods: a TRL release that renames one or
    changes its parameters fails here, naming the method, instead of breaking r1cli silently."""
    import inspect

    from trl import GRPOTrainer

    from r1cli.training.grpo import OVERRIDES, grpo_trainer_class

    ours = {n for n in vars(grpo_trainer_class()) if n.startswith("_") and not n.startswith("__")}
    assert ours <= set(OVERRIDES), f"overridden but not listed in OVERRIDES: {sorted(ours - set(OVERRIDES))}"
    changed = []
    for name, params in OVERRIDES.items():
        theirs = getattr(GRPOTrainer, name, None)
        if theirs is None:
            changed.append(f"{name} is gone from trl.GRPOTrainer")
        elif tuple(inspect.signature(theirs).parameters) != params:
            changed.append(f"{name}{tuple(inspect.signature(theirs).parameters)} is not {name}{params}")
    assert not changed, "; ".join(changed)


def test_prompts_past_the_context_are_named_or_dropped_and_counted(run_r1, toy_base, toy_data, tmp_path):
    from datasets import load_from_disk

    rows = load_from_disk(str(toy_data / "rl")).select(range(16)).to_list()
    long = [{"role": "user", "content": "What is " + "1+" * 400 + "1?"}]  # chat messages, as the toy's prompts
    rows.append({**rows[0], "id": "too-long", "prompt": long})
    data = tmp_path / "rl.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = tmp_path / "o"
    r = run_r1("grpo", "--model", toy_base, "--data", data, "--out", out, *SHORT)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and "1 of 17 prompts" in err[0] and "too-long" in err[0], r.stderr
    assert "drop_long_prompts=true" in err[0] and "r1 data filter" in err[0] and not out.exists()
    r = run_r1("grpo", "--model", toy_base, "--data", data, "--out", out, *SHORT, "--set", "drop_long_prompts=true")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["dropped_long_prompts"] == 1 and m["counts"]["prompts"] == 16 and m["counts"]["steps"] == 2
