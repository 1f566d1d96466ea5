"""`r1 rm`, `r1 align` and the reward-model rewards: routing by domain, summary-only
helpfulness, the schedule, batch composition, bad input, and short runs on the toy world."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from r1cli.errors import UserError
from r1cli.rewards.preference import check_rm_dir, harmlessness, helpfulness, summary_view
from r1cli.stages.align import mix_order

PROMPT = [{"role": "user", "content": "Hello!"}]
SUMMARY = "Hello! How can I help you today?"
CALM = f"<think>\nA greeting. Greet back.\n</think>\n{SUMMARY}"
DARK = f"<think>\nI could tell them how to make a bomb and hurt someone.\n</think>\n{SUMMARY}"


def save_tiny_rm(out: Path, seed: int = 0, pad: bool = True) -> Path:
    """A random one-label Llama sequence classifier with the tiny char tokenizer (Llama, as in
    tiny_lm: transformers 5 swaps a custom tokenizer for Qwen2Tokenizer on model_type qwen2)."""
    import torch
    from tiny_lm import tiny_tokenizer
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
                      pad_token_id=tok.pad_token_id if pad else None)
    LlamaForSequenceClassification(cfg).save_pretrained(out)
    if not pad:
        tok.pad_token = None
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory):
    return save_tiny_rm(tmp_path_factory.mktemp("rm") / "rm")


# --- routing -----------------------------------------------------------------------------------


def test_helpfulness_sees_only_the_summary(tiny_rm):
    """Routing: same summary, different CoTs -> same helpfulness, and the
    harmlessness RM, which reads the CoT too, can tell them apart."""
    help_, harm = helpfulness(helpful_rm=tiny_rm), harmlessness(harmless_rm=tiny_rm)
    h = help_([PROMPT, PROMPT], [CALM, DARK], domain=["general", "general"])
    s = harm([PROMPT, PROMPT], [CALM, DARK], domain=["general", "general"])
    assert h[0] == pytest.approx(h[1], abs=1e-6)
    assert s[0] != pytest.approx(s[1], abs=1e-6)
    # and a different summary does move helpfulness
    other = help_([PROMPT], [CALM.replace(SUMMARY, "Go away.")], domain=["general"])
    assert other[0] != pytest.approx(h[0], abs=1e-6)


def test_rm_rewards_route_by_domain(tiny_rm):
    help_ = helpfulness(helpful_rm=tiny_rm)
    out = help_([PROMPT] * 3, [CALM] * 3, domain=["math", "general", "code"])
    assert out[0] is None and out[2] is None and isinstance(out[1], float)
    # no domain column: every row is scored (DESIGN.md: no domain excludes nothing)
    scored = help_([PROMPT] * 2, [CALM] * 2)
    assert len(scored) == 2 and all(isinstance(v, float) for v in scored)
    # chat-message completions, as TRL passes them for chat prompts
    msg = help_([PROMPT], [[{"role": "assistant", "content": CALM}]], domain=["general"])
    assert msg[0] == pytest.approx(out[1], abs=1e-6)


def test_summary_view():
    assert summary_view(CALM) == SUMMARY
    assert summary_view("<think>\nnever closed, all CoT") == ""  # no summary reaches the RM
    assert summary_view("plain reply, no CoT") == "plain reply, no CoT"
    assert summary_view("prefilled reasoning\n</think>\nDone.", prefilled_think=True) == "Done."


def test_schedule_and_rm_telemetry(tiny_rm):
    """Preference rewards return None before their start step; the RM scores are logged anyway."""
    fn = helpfulness(helpful_rm=tiny_rm, preference_rewards_from=0.75, rm_normalization="none")
    logged = {}
    state = types.SimpleNamespace(global_step=29, max_steps=40)
    assert fn([PROMPT], [CALM], domain=["general"], trainer_state=state, log_metric=logged.__setitem__) == [None]
    assert set(logged) == {"rm/helpfulness/raw_mean", "rm/helpfulness/frac_positive"}
    state.global_step = 30
    (v,) = fn([PROMPT], [CALM], domain=["general"], trainer_state=state)
    assert v == pytest.approx(logged["rm/helpfulness/raw_mean"], abs=1e-6)  # normalization none = raw score
    by_step = helpfulness(helpful_rm=tiny_rm, preference_rewards_from=5)
    assert by_step([PROMPT], [CALM], trainer_state=types.SimpleNamespace(global_step=4, max_steps=9)) == [None]
    assert by_step([PROMPT], [CALM], trainer_state=types.SimpleNamespace(global_step=5, max_steps=9))[0] is not None


def test_normalizations(tiny_rm):
    raw = helpfulness(helpful_rm=tiny_rm, rm_normalization="none")([PROMPT] * 2, [CALM, "No."])
    sig = helpfulness(helpful_rm=tiny_rm, rm_normalization="sigmoid")([PROMPT] * 2, [CALM, "No."])
    assert all(0 < s < 1 for s in sig) and (sig[0] > sig[1]) == (raw[0] > raw[1])
    run = helpfulness(helpful_rm=tiny_rm, rm_normalization="running")
    z = run([PROMPT] * 2, [CALM, "No."])
    assert z[0] == pytest.approx(-z[1], abs=1e-6)  # two scores: z = +-1/sqrt(2)
    with pytest.raises(UserError, match="fixed needs the score mean/std"):
        helpfulness(helpful_rm=tiny_rm, rm_normalization="fixed")


# --- bad reward-model dirs --------------------------------------------------------------------------


def test_causal_lm_is_not_a_reward_model(tmp_path):
    from tiny_lm import save_tiny

    lm = save_tiny(tmp_path / "lm")
    with pytest.raises(UserError, match="not a sequence-classification model.*ForCausalLM"):
        check_rm_dir(lm, "--helpful-rm")
    with pytest.raises(UserError, match="needs a reward model: pass --harmless-rm"):
        harmlessness()


def test_rm_tokenizer_without_pad_token(tmp_path):
    rm = save_tiny_rm(tmp_path / "nopad", pad=False)
    out = harmlessness(harmless_rm=rm)([PROMPT] * 3, [CALM, DARK, "short"], domain=["general"] * 3)
    assert len(out) == 3 and all(isinstance(v, float) for v in out)  # batched scoring needs a pad token: set from eos


# --- batch composition -------------------------------------------------------------------------------


DOMAINS = ["math"] * 30 + ["general"] * 10


def batches(order, size):
    return [[DOMAINS[i] for i in order[k:k + size]] for k in range(0, len(order), size)]


def test_mixed_batches_hold_their_share():
    order = mix_order(DOMAINS, per_batch=8, n_batches=10, mix="mixed", general_fraction=0.25, seed=0)
    assert len(order) == 80
    assert all(b.count("general") == 2 for b in batches(order, 8))
    # each pool is used up before any row repeats
    assert len(set(order[:40])) == 40


def test_alternate_batches_are_single_domain():
    order = mix_order(DOMAINS, per_batch=4, n_batches=8, mix="alternate", general_fraction=0.5, seed=0)
    kinds = [set(b) for b in batches(order, 4)]
    assert kinds == [{"general"}, {"math"}] * 4
    sparse = mix_order(DOMAINS, per_batch=4, n_batches=8, mix="alternate", general_fraction=0.25, seed=0)
    assert [set(b) == {"general"} for b in batches(sparse, 4)].count(True) == 2
    assert mix_order(DOMAINS, 4, 8, "alternate", 0.5, seed=0) == order  # same seed, same order (resume)


def test_general_prompts_join_later():
    order = mix_order(DOMAINS, per_batch=4, n_batches=6, mix="mixed", general_fraction=0.5, seed=0, general_from=4)
    assert [b.count("general") for b in batches(order, 4)] == [0, 0, 0, 0, 2, 2]


# --- the commands on the toy world -------------------------------------------------------------------

# 20 steps of 8 at lr 1e-3: a few seconds, and enough for both RMs to learn something (3 steps at the
# default lr left the scores where the random head put them)
FAST_RM = ["--set", "trl.max_steps=20", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.logging_steps=1",
           "--set", "trl.learning_rate=1e-3", "--set", "eval_fraction=0.1", "--set", "trl.save_strategy='no'"]


def r1(*args) -> None:
    """Run `r1 ...` in-process (the CLI's own error handling included)."""
    from r1cli.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as e:
        if e.code:
            raise


@pytest.fixture(scope="module")
def toy_rms(toy_data, toy_base, tmp_path_factory):
    d = tmp_path_factory.mktemp("rms")
    r1("rm", "--model", toy_base, "--data", toy_data / "helpful_pairs", "--out", d / "helpful", *FAST_RM,
       "--set", "trl.max_steps=60")
    # 60 steps, not 20: with the word-level tokenizer the rows are short, and in 20 steps the safety RM's bias
    # had not moved (it ranked safe above unsafe but called everything unsafe); a second or two each
    r1("rm", "--pointwise", "--model", toy_base, "--data", toy_data / "safety", "--out", d / "safety", *FAST_RM,
       "--set", "trl.max_steps=60")
    return d / "helpful", d / "safety"


def test_rm_both_kinds(toy_rms, toy_data):
    for path, key, steps in zip(toy_rms, ("pair_accuracy", "label_accuracy"), (60, 60)):
        m = json.loads((path / "r1.json").read_text())
        assert m["kind"] == "checkpoint" and m["stage"] == "rm" and m["counts"]["steps"] == steps
        assert m["metrics"]["measured_on"] == "heldout"
        assert m["counts"]["heldout"] == round(0.1 * m["counts"]["rows"]) == m["metrics"]["n"]
        # an accuracy is a share of the held-out rows (a whole count of them); the RM tells rows apart
        hits = m["metrics"][key] * m["metrics"]["n"]
        assert hits == pytest.approx(round(hits), abs=1e-3) and m["metrics"]["score_std"] > 0
        check_rm_dir(path, "--helpful-rm")  # a one-label sequence classifier that r1 align accepts
    # the safety RM learned: it tells the held-out safe replies from the unsafe ones (about 0.6 of the rows
    # are safe, so a head that calls everything safe scores about 0.6; this one scored 1.0 when written)
    safety = json.loads((toy_rms[1] / "r1.json").read_text())["metrics"]
    assert safety["label_accuracy"] >= 0.9 and safety["safe_score_mean"] > safety["unsafe_score_mean"] + 0.5
    # a reward model made by r1 rm scores through the registry, as `r1 align` and `r1 score` use it
    from r1cli.rewards import resolve_rewards

    fixed = resolve_rewards({"helpfulness": 1.0}, helpful_rm=str(toy_rms[0]), rm_normalization="fixed")
    assert isinstance(fixed[0][1]([PROMPT], [CALM])[0], float)
    # the helpfulness RM learned its training pairs: through that reward it scores chosen above rejected on
    # most of them (0.5 is chance; the untrained head scored 0.48 of them; this one 0.83 when written).
    # Held out, a 30-step base reads too little of the toy chat for 12 pairs to say more than chance does,
    # and a wrong answer against the right one is beyond it: the pairs that differ in shape only.
    from r1cli.stages.rm import load_rows, split

    seed = json.loads((toy_rms[0] / "r1.json").read_text())["config"]["seed"]
    train, _ = split(load_rows(toy_data / "helpful_pairs", pointwise=False), 0.1, seed)  # the stage's own split
    train = train.filter(lambda r: r["rejected_kind"] != "wrong")
    raw = resolve_rewards({"helpfulness": 1.0}, helpful_rm=str(toy_rms[0]), rm_normalization="none")[0][1]
    chosen = raw(train["prompt"], train["chosen"], domain=["general"] * len(train))
    rejected = raw(train["prompt"], train["rejected"], domain=["general"] * len(train))
    assert len(chosen) == len(train) > 0
    assert sum(c > r for c, r in zip(chosen, rejected)) / len(train) >= 0.7


def test_rm_measures_accuracy_on_given_held_out_pairs_by_kind_of_bad_reply(toy_data, toy_base, tmp_path):
    """--eval-data: pairs on other prompts than --data's (the toy's held-out general prompts); every --data
    row trains, and the accuracy is given per `rejected_kind` (is a wrong reply ranked below the right one?)."""
    from datasets import load_from_disk

    out = tmp_path / "rm"
    r1("rm", "--model", toy_base, "--data", toy_data / "helpful_pairs", "--eval-data", toy_data / "helpful_pairs_eval",
       "--out", out, *FAST_RM)
    m = json.loads((out / "r1.json").read_text())
    held = load_from_disk(str(toy_data / "helpful_pairs_eval"))
    assert m["metrics"]["measured_on"] == "eval_data" and m["metrics"]["n"] == len(held)
    assert m["counts"]["train"] == m["counts"]["rows"] == len(load_from_disk(str(toy_data / "helpful_pairs")))
    kinds = set(held["rejected_kind"])
    assert kinds == {"dismissive", "wrong", "off_topic", "wrong_language"}
    for k in kinds:  # each a share of that kind's pairs
        n = held["rejected_kind"].count(k)
        hits = m["metrics"][f"{k}_pair_accuracy"] * n
        assert hits == pytest.approx(round(hits), abs=1e-3)
    assert sum(m["metrics"][f"{k}_pair_accuracy"] * held["rejected_kind"].count(k) for k in kinds) / len(held) == \
        pytest.approx(m["metrics"]["pair_accuracy"], abs=1e-4)


def test_rm_checks_the_kind_of_data(toy_data, toy_base, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        r1("rm", "--pointwise", "--model", toy_base, "--data", toy_data / "helpful_pairs", "--out", tmp_path / "x")
    assert e.value.code == 2 and "drop --pointwise" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        r1("rm", "--model", toy_base, "--data", toy_data / "safety", "--out", tmp_path / "x")
    assert e.value.code == 2 and "add --pointwise" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # held-out rows of the other kind: named as --eval-data, before any training
        r1("rm", "--model", toy_base, "--data", toy_data / "helpful_pairs", "--eval-data", toy_data / "safety",
           "--out", tmp_path / "x")
    assert e.value.code == 2 and f"--eval-data {toy_data / 'safety'} holds labelled completions" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


FAST_ALIGN = ["--set", "trl.max_steps=2", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
              "--set", "trl.max_completion_length=48", "--set", "trl.logging_steps=1", "--set", "samples_every=1",
              "--set", "trl.save_strategy='no'", "--set", "preference_rewards_from=1", "--set", "general_fraction=0.5"]


def test_align_routes_and_logs_per_domain(toy_data, toy_base, toy_rms, tmp_path):
    out = tmp_path / "align"
    r1("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general", "--helpful-rm", toy_rms[0],
       "--harmless-rm", toy_rms[1], "--out", out, *FAST_ALIGN, "--eval-data", toy_data / "eval",
       "--general-eval-data", toy_data / "general_eval", "--set", "eval.limit=4", "--set", "eval.k=1",
       "--set", "eval.sampling.max_new_tokens=24")
    m = json.loads((out / "r1.json").read_text())
    # before/after: reasoning numbers on --eval-data, RM scores on --general-eval-data
    assert m["metrics"]["eval"]["before"]["n_prompts"] == m["metrics"]["eval"]["after"]["n_prompts"] == 4
    for side in ("before", "after"):
        g = m["metrics"]["general_eval"][side]
        assert g["n_samples"] == 4 and "helpfulness_score_mean" in g
        # per prompt, for the report's paired bootstrap: the sums give back the means (so safe_rate is a
        # share of the 4 samples: a prompt's safe count is at most its samples)
        pp = g["per_prompt"]
        assert len(pp["id"]) == 4 and sum(pp["n"]) == 4 and len(set(pp["id"])) == 4
        assert all(0 <= c <= n for c, n in zip(pp["safe_count"], pp["n"]))
        assert sum(pp["helpfulness_score_sum"]) / 4 == pytest.approx(g["helpfulness_score_mean"], abs=1e-4)
        assert sum(pp["safe_count"]) / 4 == pytest.approx(g["safe_rate"])
        # the general-eval rows have reference answers: the share of replies that say what the reference says
        assert 0 <= g["right_reply"] <= 1 and sum(pp["right_count"]) / 4 == pytest.approx(g["right_reply"])
    assert m["stage"] == "align" and m["counts"]["steps"] == 2 and m["counts"]["preference_rewards_from_step"] == 1
    assert m["config"]["mix"] == "mixed" and m["metrics"]["general_fraction"] == 0.5
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logs if "reward" in r]
    # step 0: preference rewards not yet on, but the RM scores are logged; step 1: they apply to general rows
    assert "rewards/helpfulness/general/mean" not in train[0] and "rm/helpfulness/raw_mean" in train[0]
    assert "rewards/helpfulness/general/mean" in train[1] and "rewards/harmlessness/general/mean" in train[1]
    assert "rewards/accuracy/math/mean" in train[0] and "rewards/format/math/mean" in train[0]
    assert not any("rewards/format/general" in k or "rewards/helpfulness/math" in k for r in logs for k in r)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    domains = {s["domain"] for s in samples}
    assert "general" in domains and domains - {"general"}  # both sides of the routing were logged
    for s in samples:
        rule, rm = ("accuracy", "format"), ("helpfulness", "harmlessness")
        none = rule if s["domain"] == "general" else rm
        assert all(s["rewards"][n] is None for n in none)
    assert "rewards/helpfulness/general/mean" in m["metrics"]["over_run"]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)  # a checkpoint per the contract


def test_align_with_tools_logs_tool_metrics(toy_data, toy_base, toy_rms, tmp_path):
    """`tools:` in r1 align: the same decode-loop tool rollouts as r1 grpo, with TRL's tool metrics."""
    out = tmp_path / "tools"
    r1("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general", "--helpful-rm", toy_rms[0],
       "--harmless-rm", toy_rms[1], "--out", out, *FAST_ALIGN, "--set", "tools=[calculator]")
    m = json.loads((out / "r1.json").read_text())
    assert m["config"]["tools"] == ["calculator"] and m["counts"]["steps"] == 2
    train = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert train and all("tools/call_frequency" in r and "tools/failure_frequency" in r for r in train)


def test_align_alternate_batches(toy_data, toy_base, toy_rms, tmp_path):
    """Only the RMs score general rows here, so general prompts join at the RMs' start (step 1)."""
    out = tmp_path / "alt"
    r1("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general", "--helpful-rm", toy_rms[0],
       "--harmless-rm", toy_rms[1], "--out", out, *FAST_ALIGN, "--set", "mix=alternate",
       "--set", "general_rewards=[helpfulness, harmlessness]")
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    domains = {}
    for s in samples:
        domains.setdefault(s["step"], set()).add(s["domain"])
    assert domains == {0: {"math"}, 1: {"general"}}  # one domain per batch; general from the RMs' start


@pytest.mark.parametrize("case", ["rms_without_general", "general_without_rms", "causal_lm_as_rm", "no_domain"])
def test_align_bad_input(case, toy_data, toy_base, toy_rms, tmp_path, capsys):
    args = ["align", "--model", toy_base, "--out", tmp_path / "out", "--data", toy_data / "rl"]
    if case == "rms_without_general":
        args += ["--helpful-rm", toy_rms[0], "--harmless-rm", toy_rms[1]]
        want = "no --data row has domain general"
    elif case == "general_without_rms":
        args += ["--data", toy_data / "general"]
        want = "no reward model scores them"
    elif case == "causal_lm_as_rm":
        args += ["--data", toy_data / "general", "--helpful-rm", toy_base, "--harmless-rm", toy_rms[1]]
        want = "not a sequence-classification model"
    else:
        rows = tmp_path / "nodomain.jsonl"
        rows.write_text(json.dumps({"prompt": "Hello!", "answer": "Hi!"}) + "\n")
        args += ["--data", rows, "--helpful-rm", toy_rms[0], "--harmless-rm", toy_rms[1]]
        want = "have no `domain`"
    with pytest.raises(SystemExit) as e:
        r1(*args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and want in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_score_with_reward_models(toy_rms, tmp_path):
    rows = tmp_path / "completions.jsonl"
    lines = [{"prompt": PROMPT, "completion": c, "domain": d} for c, d in ((CALM, "general"), (DARK, "general"),
                                                                          ("<think>\n1+1=2.\n</think>\n\\boxed{2}", "math"))]
    rows.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r1("score", rows, "--rewards", "helpfulness,harmlessness", "--helpful-rm", toy_rms[0], "--harmless-rm", toy_rms[1],
       "--out", tmp_path / "scored")
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "scored"))
    h, s = ds["reward_helpfulness"], ds["reward_harmlessness"]
    assert h[0] == pytest.approx(h[1], abs=1e-6) and h[2] is None and s[2] is None
    assert all(0 < v < 1 for v in h[:2] + s[:2])  # sigmoid normalisation by default
