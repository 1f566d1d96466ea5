"""LoRA (a `peft:` recipe section) on the toy world: a LoRA cold start and a LoRA GRPO run change the
model measurably, through the adapter only; OUT is the merged model plus OUT/adapter/; a killed LoRA
run resumes; the `peft:` settings are checked before anything loads (QLoRA refused without a GPU).

    pytest tests/test_lora.py
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from test_resume import kill_and_resume, procs, r1_cmd, same_steps, uninterrupted  # noqa: F401 (procs: a fixture)

from r1cli.cli import main

# all linear layers, rank 16: enough capacity that 30 steps move the toy model (LoRA Without Regret:
# put LoRA on the MLPs too, with a learning rate about 10x the full fine-tune's)
LORA = ["--set", "peft.r=16", "--set", "peft.lora_alpha=32", "--set", "peft.target_modules=all-linear"]
SFT = ["--set", "trl.per_device_train_batch_size=8", "--set", "trl.max_length=256", "--set", "trl.logging_steps=1",
       "--set", "trl.learning_rate=3e-3"]
# the only reward is DAPO's overlong penalty (0 up to 8 tokens, down to -1 at 32): the toy base, which
# earns no accuracy yet, has a signal to learn from, and its effect shows in the completion lengths
GRPO = ["--set", "rewards={overlong: 1}", "--set", "reward_options.max_completion_len=32",
        "--set", "reward_options.soft_punish_cache=24", "--set", "trl.per_device_train_batch_size=16",
        "--set", "trl.num_generations=4", "--set", "trl.max_completion_length=32", "--set", "trl.logging_steps=1",
        "--set", "trl.learning_rate=5e-3"]


# --- what a LoRA run leaves --------------------------------------------------------------------------


def only_lora_changed(base: Path, out: Path) -> int:
    """Every weight of the merged model in OUT equals the input model's, except those LoRA wraps, which
    equal W + (alpha / r) * B @ A with the saved adapter's A and B. Returns how many weights LoRA changed."""
    import torch
    from safetensors.torch import load_file

    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg["use_rslora"] else cfg["r"])
    assert set(after) == set(before)
    changed = 0
    for name, w in before.items():
        module = f"base_model.model.{name.removesuffix('.weight')}"
        a, b = adapter.get(f"{module}.lora_A.weight"), adapter.get(f"{module}.lora_B.weight")
        if a is None:
            assert torch.equal(after[name], w), f"{name} is not LoRA's but changed"
            continue
        torch.testing.assert_close(after[name], w + scale * (b @ a), rtol=1e-5, atol=1e-6)
        assert not torch.equal(after[name], w), f"{name}: the LoRA delta is zero (nothing trained)"
        changed += 1
    return changed


def heldout_nll(model_dir: Path, rows) -> float:
    """Mean loss of the model on the assistant turns of `rows` (held out from training)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for messages in rows["messages"]:
            p = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=True)
            full = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            labels = torch.tensor([[-100] * len(p["input_ids"]) + full[len(p["input_ids"]):]])
            loss = lm(input_ids=torch.tensor([full]), labels=labels).loss
            k = int((labels[0, 1:] != -100).sum())
            total, n = total + loss.item() * k, n + k
    return total / n


def check_manifest_and_adapter(out: Path, base: Path) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = json.loads((out / "r1.json").read_text())
    p = m["peft"]
    assert p["method"] == "lora" and p["r"] == 16 and p["adapter"] == "adapter"
    assert 0 < p["trainable_params"] < p["total_params"]
    # OUT is a plain HF dir (no adapter_config.json at its top, which would make transformers load the adapter)
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    on_base = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                        out / "adapter")
    ids = torch.tensor([[3, 7, 11, 5, 9, 2]])
    torch.testing.assert_close(merged(ids).logits, on_base(ids).logits, rtol=1e-4, atol=1e-4)
    return m


def test_lora_coldstart_learns_through_the_adapter_only(toy_base, toy_data, tmp_path):
    from datasets import load_from_disk

    rows = load_from_disk(str(toy_data / "coldstart"))
    train, heldout = rows.select(range(len(rows) - 40)), rows.select(range(len(rows) - 40, len(rows)))
    train.save_to_disk(str(tmp_path / "train"))
    out = tmp_path / "cs"
    main(["coldstart", "--model", str(toy_base), "--data", str(tmp_path / "train"), "--out", str(out),
          *LORA, *SFT, "--set", "trl.max_steps=30"])
    check_manifest_and_adapter(out, toy_base)
    assert only_lora_changed(toy_base, out) == 14  # 7 linear layers x 2 decoder layers
    before, after = heldout_nll(toy_base, heldout), heldout_nll(out, heldout)
    print(f"held-out loss of the cold-start replies: {before:.3f} -> {after:.3f}")
    assert after < before - 0.2, (before, after)


def test_lora_grpo_changes_what_the_model_samples(toy_base, toy_data, tmp_path):
    out = tmp_path / "grpo"
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out),
          "--eval-data", str(toy_data / "eval"), *LORA, *GRPO, "--set", "trl.max_steps=20",
          "--set", "trl.save_strategy=\"no\"", "--set", "eval.limit=40", "--set", "eval.k=2",
          "--set", "eval.sampling.max_new_tokens=64"])
    m = check_manifest_and_adapter(out, toy_base)
    assert only_lora_changed(toy_base, out) == 14
    # the before/after eval (sampled, 40 prompts x 2): the penalty on long completions was learned
    before, after = (m["metrics"]["eval"][k]["mean_completion_tokens"] for k in ("before", "after"))
    print(f"mean completion tokens on the eval prompts: {before} -> {after}")
    assert after < before / 2, (before, after)


def test_lora_rm_trains_the_score_head_and_merges(toy_base, toy_data, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "rm"
    main(["rm", "--model", str(toy_base), "--data", str(toy_data / "helpful_pairs"), "--out", str(out), *LORA,
          "--set", "trl.max_steps=3", "--set", "trl.per_device_train_batch_size=4", "--set", "trl.max_length=256"])
    p = json.loads((out / "r1.json").read_text())["peft"]
    assert p["method"] == "lora" and "score" in p["modules_to_save"]
    AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32)


def test_lora_align_with_reward_models(toy_base, toy_data, tmp_path):
    from test_align import FAST_ALIGN, save_tiny_rm

    rms = save_tiny_rm(tmp_path / "rm_helpful", seed=0), save_tiny_rm(tmp_path / "rm_safety", seed=1)
    out = tmp_path / "align"
    main([str(a) for a in ("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general",
                           "--helpful-rm", rms[0], "--harmless-rm", rms[1], "--out", out, *FAST_ALIGN, *LORA,
                           "--set", "trl.learning_rate=5e-3")])
    assert json.loads((out / "r1.json").read_text())["peft"]["target_modules"] == [
        "down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert only_lora_changed(toy_base, out) == 14


# --- a killed LoRA run resumes --------------------------------------------------------------------------


def test_lora_kill_and_resume(procs, toy_base, toy_data, tmp_path):  # noqa: F811 (the fixture)
    cmd = r1_cmd("coldstart", "--model", toy_base, "--data", toy_data / "coldstart", *LORA, *SFT,
                 "--set", "trl.save_strategy=steps", "--set", "trl.save_steps=2", "--set", "trl.max_steps=12")
    m = kill_and_resume(procs, cmd, tmp_path / "killed")
    whole = uninterrupted(procs, cmd, tmp_path / "whole")
    assert m["counts"]["steps"] == whole["counts"]["steps"] == 12
    assert m["peft"] == whole["peft"]
    same_steps(tmp_path / "killed", tmp_path / "whole", ("loss", "learning_rate"))
    only_lora_changed(toy_base, tmp_path / "killed")


def test_lora_grpo_kill_and_resume(procs, toy_base, toy_data, tmp_path):  # noqa: F811 (the fixture)
    cmd = r1_cmd("grpo", "--model", toy_base, "--data", toy_data / "rl", *LORA, *GRPO, "--set", "samples_every=1",
                 "--set", "trl.save_strategy=steps", "--set", "trl.save_steps=2", "--set", "trl.max_steps=8")
    m = kill_and_resume(procs, cmd, tmp_path / "killed")
    whole = uninterrupted(procs, cmd, tmp_path / "whole")
    assert m["counts"]["steps"] == whole["counts"]["steps"] == 8
    same_steps(tmp_path / "killed", tmp_path / "whole", ("loss", "reward", "completions/mean_length"))
    only_lora_changed(toy_base, tmp_path / "killed")


# --- settings: one line, exit 2, before anything loads ---------------------------------------------------


@pytest.mark.parametrize("sets,msg", [
    (["peft.lora_alhpa=8"], r"unknown key peft.lora_alhpa for LoraConfig \(did you mean 'lora_alpha'\?\)"),
    (["peft.r=0"], r"peft.r must be >= 1, got 0"),
    (["peft.r=eight"], r"peft.r must be an integer"),
    (["peft.lora_dropout=1.5"], r"peft.lora_dropout must be in \[0, 1\)"),
    (["peft.task_type=SEQ_CLS"], r"peft.task_type is set by r1cli or PEFT"),
    (["peft=[8]"], r"peft must be a mapping of LoraConfig fields"),
])
def test_bad_peft_settings_refused_when_resolved(sets, msg):
    from r1cli.config import SFTStageConfig
    from r1cli.errors import UserError
    from r1cli.recipe import resolve

    with pytest.raises(UserError, match=msg):
        resolve(SFTStageConfig, None, sets)


@pytest.mark.parametrize("stage,extra,msg", [
    ("coldstart", ["--set", "peft.lora_alhpa=8"], r"unknown key peft.lora_alhpa for LoraConfig"),
    ("coldstart", ["--set", "peft.target_modules=all-linear", "--set", "peft.layers_to_transform=[0]"],
     r"the peft settings do not fit together: .*layers_to_transform"),
    ("grpo", ["--set", "peft.load_in_4bit=true"], r"peft.load_in_4bit \(QLoRA\) needs a CUDA GPU"),
    ("rm", ["--set", "peft.lora_alpha=0"], r"peft.lora_alpha must be > 0"),
])
def test_bad_peft_settings_exit_2(run_r1, toy_base, toy_data, tmp_path, stage, extra, msg):
    import torch

    if "load_in_4bit" in " ".join(extra) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: QLoRA is not refused here")
    data = {"coldstart": "coldstart", "grpo": "rl", "rm": "helpful_pairs"}[stage]
    out = tmp_path / "o"
    r = run_r1(stage, "--model", toy_base, "--data", toy_data / data, "--out", out, *extra)
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr and re.search(msg, err[0]), r.stderr
    assert not out.exists() and not (tmp_path / "o.partial").exists()


def test_peft_section_resolves_and_is_shown_with_its_source(tmp_path):
    from r1cli.config import GRPOStageConfig
    from r1cli.recipe import changed_settings, resolve, resolve_stage

    recipe = tmp_path / "r.yaml"
    recipe.write_text("peft:\n  r: 32\n  lora_alpha: 64\n  target_modules: all-linear\n")
    res = resolve_stage(GRPOStageConfig, recipe, ["peft.r=8"])
    assert res.config.peft == {"r": 8, "lora_alpha": 64, "target_modules": "all-linear"}
    rows = {k: (v, s) for k, v, s in changed_settings(res)}
    assert rows["peft.r"] == (8, "--set") and rows["peft.lora_alpha"] == (64, "recipe r.yaml")
    assert resolve(GRPOStageConfig).peft == {}  # no section: full fine-tuning


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("recipes/*/*_lora.yaml")),
                         ids=lambda p: p.name)
def test_lora_recipes_build_their_lora_config(path):
    """Beyond test_recipe's check of every recipe: PEFT accepts the section, and the TRL settings allow LoRA."""
    from r1cli.training import lora
    from r1cli.config import STAGES
    from r1cli.recipe import load_yaml, resolve

    stage = load_yaml(path)["stage"]
    cfg = resolve(STAGES[stage], path, stage=stage)
    config = lora.lora_config(cfg.peft)
    assert config is not None and config.r == cfg.peft["r"] and config.target_modules == "all-linear"
    assert not cfg.trl.get("sync_ref_model", False)


def test_qlora_load_settings_are_the_qlora_papers():
    """What a GPU run would load with (the refusal above keeps it from running here): NF4, double
    quantization, bf16 compute (Dettmers et al. 2023); full fine-tuning and LoRA load as before."""
    import torch

    from r1cli.training import lora

    assert lora.load_kwargs({}) == {} and lora.load_kwargs({"r": 8}) == {}
    q = lora.load_kwargs({"r": 8, "load_in_4bit": True})["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
