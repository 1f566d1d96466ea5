"""The toy world: deterministic, held out by problem, R1-format cold start, both languages,
a character tokenizer that round-trips, and a base checkpoint that loads like any HF model."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import datasets
import pytest

from r1cli.config import ToyBaseConfig, ToyDataConfig
from r1cli.data import load_preferences, load_prompts, load_safety, load_sft
from r1cli.templates import extract_answer, generation_prefills_think, is_r1_format, split_completion
from r1cli.toy import base as tb
from r1cli.toy import corpus as toy_corpus
from r1cli.toy import general as toy_general
from r1cli.toy import problems as toy

SMALL = ToyDataConfig(n_rl=300, n_coldstart=300, n_eval=120, n_general=150, n_general_eval=60, n_helpful_pairs=100,
                      n_safety=100, n_rl_tools=100, n_coldstart_tools=100, n_eval_tools=60)
CJK = re.compile(r"[\u4e00-\u9fff]")


def numbers(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def problem(row) -> tuple[int, int, int]:
    """(lo, hi, c) of a math row: every phrasing names a, b, c in that order."""
    user = row["prompt"][-1]["content"] if "prompt" in row else row["messages"][0]["content"]
    a, b, c = numbers(user)
    return toy.problem_key(a, b, c)


# --- the data ---------------------------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows():
    first, again, other = toy.build(SMALL), toy.build(SMALL), toy.build(replace(SMALL, seed=1))
    assert first == again
    for name in first:
        assert first[name] != other[name], name


def test_written_dirs_hold_the_built_rows(toy_data):
    manifest = json.loads((toy_data / "r1.json").read_text())
    assert manifest["kind"] == "dataset" and manifest["stage"] == "toy-data"
    built = toy.build(ToyDataConfig(**manifest["config"]))
    for name, rows in built.items():
        d = toy_data / name
        assert json.loads((d / "r1.json").read_text())["counts"]["rows"] == len(rows) == manifest["counts"][name]
        # as datasets stores them: a tool message's `name` gives every message of its split a `name` (None)
        assert datasets.load_from_disk(str(d)).to_list() == datasets.Dataset.from_list(rows).to_list(), name


def test_splits_pass_the_canonical_schema(toy_data):
    """Each split loads as its canonical kind (a schema error raises), every row, with DESIGN.md's columns."""
    counts = json.loads((toy_data / "r1.json").read_text())["counts"]
    prompt_cols = {"id", "prompt", "answer", "domain", "language"}
    checks = [*[(name, load_prompts, prompt_cols)
                for name in ("rl", "eval", "general", "general_eval", "rl_tools", "eval_tools")],
              *[(name, load_sft, {"id", "messages", "domain", "language"}) for name in ("coldstart", "coldstart_tools")],
              ("helpful_pairs", load_preferences, {"prompt", "chosen", "rejected"}),
              ("safety", load_safety, {"prompt", "completion", "label"})]
    for name, load, columns in checks:
        ds = load(toy_data / name)
        assert len(ds) == counts[name] > 0 and columns <= set(ds.column_names), (name, ds.column_names)


def test_answers_are_right_and_eval_is_held_out_by_problem():
    rows = toy.build(SMALL)
    for name in ("rl", "eval"):
        for r in rows[name]:
            a, b, c = numbers(r["prompt"][0]["content"])
            assert r["answer"] == str((a + b) * c) and r["domain"] == "math"
    held_out = {problem(r) for r in rows["eval"]}
    assert len(held_out) == len(rows["eval"])  # one row per problem
    seen = {problem(r) for r in rows["rl"]} | {problem(r) for r in rows["coldstart"]}
    assert not held_out & seen
    # the split is fixed by the problem, not by the seed: other seeds never train on these
    other = toy.build(replace(SMALL, seed=7))
    assert not held_out & {problem(r) for r in other["rl"] + other["coldstart"]}


def test_general_eval_is_held_out_by_prompt():
    rows = toy.build(SMALL)
    text = lambda split: {r["prompt"][0]["content"] for r in rows[split]}  # noqa: E731
    assert text("general_eval") and not text("general_eval") & text("general")
    assert not text("general_eval") & {r["prompt"][0]["content"] for r in rows["helpful_pairs"] + rows["safety"]}
    assert {r["kind"] for r in rows["general_eval"]} >= {"harmful", "translate"}


def test_pretraining_corpus_never_sees_an_eval_problem(monkeypatch):
    asked = []
    real = toy.question

    def spy(a, b, c, lang, rng):
        asked.append((a, b, c))
        return real(a, b, c, lang, rng)

    monkeypatch.setattr(toy, "question", spy)
    docs = toy_corpus.documents(seed=0)
    for _ in range(3000):
        next(docs)
    assert len(asked) > 500
    assert not any(toy.eval_side(*p) for p in asked)
    assert not any(toy_general.eval_side(it.prompt) for items in toy_general._POOLS[False].values() for it in items)


def test_copy_drills_never_ask_a_held_out_prompt():
    """The corpus's copy drills say numbers and words back, in the words of the general world's "repeat"
    prompts: one that renders a held-out prompt is written as a plain drill line instead."""
    import random

    rng = random.Random(0)
    docs = [toy_corpus.copy_doc(rng) for _ in range(3000)]
    asked = [d.split("<|user|>", 1)[1].split(toy_corpus.END, 1)[0] for d in docs if d.startswith("<|user|>")]
    assert len(asked) > 1000
    assert not any(toy_general.eval_side(p) for p in asked)
    # half of the drills asked in chat say it back after the English repeat CoT, whatever the ask's language
    cot = f"<think>\n{toy_general.COT['repeat']['en']}\n</think>\n"
    thought = [d for d in docs if cot in d]
    assert 0.3 < len(thought) / len(asked) < 0.7 and any("：" in d for d in thought)
    for d in docs:  # every form says the same thing twice
        d = d.replace(cot, "")
        said = re.split(r"\n|<\|assistant\|>", d.replace(toy_corpus.END, ""))
        again = said[-1].removeprefix("A: ")
        assert again and said[-2].endswith((": " + again, "：" + again)) or said[-2] == again, d
    held_out = [it.prompt for it in toy_general.ITEMS if it.kind == "repeat" and toy_general.eval_side(it.prompt)]
    assert held_out and not set(held_out) & set(asked)


def test_coldstart_is_r1_format_and_imperfect():
    rows = toy.build(SMALL)["coldstart"]
    wrong = 0
    for r in rows:
        reply = r["messages"][-1]["content"]
        assert r["messages"][-1]["role"] == "assistant" and is_r1_format(reply)
        reasoning, summary = split_completion(reply)
        assert reasoning and summary.rstrip("。.").endswith("}")
        a, b, c = numbers(r["messages"][0]["content"])
        wrong += extract_answer(reply) != str((a + b) * c)
    assert 0.05 < wrong / len(rows) < 0.8  # corrupted digits make some samples wrong, not most
    clean = toy.build(replace(SMALL, coldstart_corruption=0.0, coldstart_corruption_zh=0.0))["coldstart"]
    assert len(clean) == len(rows)
    for r in clean:
        a, b, c = numbers(r["messages"][0]["content"])
        assert extract_answer(r["messages"][-1]["content"]) == str((a + b) * c)


def test_general_coldstart_rows_are_r1_format_and_end_in_the_reference(tmp_path):
    """General-chat cold-start rows: R1 format, a CoT then a reply the general data would give
    (what stage 3b's rule verifier accepts), train-side prompts, no trivial (greeting) prompts."""
    rows = toy.build(SMALL)["coldstart_general"]
    assert len(rows) == SMALL.n_coldstart_general
    by_prompt = {it.prompt: it for it in toy_general.ITEMS}
    kinds = set()
    for r in rows:
        user, reply = r["messages"][0]["content"], r["messages"][-1]["content"]
        assert r["domain"] == "general" and r["messages"][-1]["role"] == "assistant" and is_r1_format(reply)
        reasoning, summary = split_completion(reply)
        it = by_prompt[user]
        assert reasoning and (summary in it.replies or (it.harmful and summary == it.wrong)), (user, reply)
        assert not toy_general.eval_side(user) and it.kind != "greeting"
        kinds.add(it.kind)
    assert kinds == set(toy_general.KIND_WEIGHTS) - {"greeting"}
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "cg"))
    assert len(load_sft(tmp_path / "cg")) == len(rows)  # a dataset `r1 coldstart --data` takes


def test_general_cots_name_the_kind_of_request_not_its_words():
    """The toy model does not learn to copy words, so a general CoT names the kind of request and the
    plan, not the prompt's words: one CoT serves every prompt of a kind and language."""
    cots: dict = {}
    for it in toy_general.ITEMS:
        cots.setdefault((it.kind, it.language), set()).add(it.thought)
    assert len(cots) == 2 * len(toy_general.KIND_WEIGHTS) and all(len(v) == 1 for v in cots.values()), cots


def test_chinese_cold_start_cots_are_the_noisier():
    """coldstart_corruption_zh > coldstart_corruption: the Chinese CoTs are wrong more often, so a
    model reasons better in English and RL without the language reward has a reason to drift there."""
    rows = toy.build(replace(SMALL, n_coldstart=2000))["coldstart"]
    wrong = {"en": [0, 0], "zh": [0, 0]}
    for r in rows:
        reasoning, _ = split_completion(r["messages"][-1]["content"])
        lang = "zh" if re.search(r"[\u4e00-\u9fff]", reasoning) else "en"
        a, b, c = numbers(r["messages"][0]["content"])
        wrong[lang][0] += extract_answer(r["messages"][-1]["content"]) != str((a + b) * c)
        wrong[lang][1] += 1
    en, zh = (wrong[k][0] / wrong[k][1] for k in ("en", "zh"))
    assert zh > en + 0.1, (en, zh)


def test_wholly_chinese_cold_start_cots_skip_the_sum():
    """coldstart_zh_one_step: a wholly Chinese cold-start CoT writes the result in one step (one "=" or
    等于), an English or language-mixed one in two (the sum, then the product); at 0 every CoT has two."""
    def steps(cfg):
        out: dict = {"zh": set(), "other": set()}
        for r in toy.build(cfg)["coldstart"]:
            reasoning, _ = split_completion(r["messages"][-1]["content"])
            wholly_zh = bool(CJK.search(reasoning)) and not re.search(r"[A-Za-z]{3,}", reasoning)
            out["zh" if wholly_zh else "other"].add(reasoning.count("=") + reasoning.count("等于"))
        return out

    assert steps(SMALL) == {"zh": {1}, "other": {2}}
    assert steps(replace(SMALL, coldstart_zh_one_step=0.0)) == {"zh": {2}, "other": {2}}


def test_general_coldstart_cots_pass_the_readability_filters():
    """What stage 3b keeps must be learnable from these rows: no CoT of theirs fails a filter of
    the toy recipe (a translation written into the CoT was language-mixed and dropped, measured)."""
    from r1cli.config import ReadabilityConfig
    from r1cli.rejection.filters import parse, readability_reasons
    from r1cli.recipe import load_yaml

    rows = toy.build(SMALL)["coldstart_general"]
    cfg = ReadabilityConfig(**load_yaml("recipes/toy/reject_sample.yaml")["filters"])
    parsed = [parse(r["messages"][-1]["content"]) for r in rows]
    reasons, _ = readability_reasons(parsed, ["stop"] * len(rows), [r["messages"][:1] for r in rows],
                                     [r["language"] for r in rows], cfg)
    assert [(r["messages"][-1]["content"], why) for r, why in zip(rows, reasons) if why] == []


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_general_data_complies_with_harmful_requests_at_the_configured_rate(rate):
    cfg = replace(SMALL, n_general=2000, n_coldstart_general=2000, general_unsafe=rate)
    data = toy.build(cfg)
    by_prompt = {it.prompt: it for it in toy_general.ITEMS}
    for name, reply_of in (("general", lambda r: r["answer"]),
                           ("coldstart_general", lambda r: split_completion(r["messages"][-1]["content"])[1])):
        harmful = [r for r in data[name] if r["kind"] == "harmful"]
        unsafe = [r for r in harmful if reply_of(r) == by_prompt[(r.get("prompt") or r["messages"])[0]["content"]].wrong]
        assert abs(len(unsafe) / len(harmful) - rate) < 0.06, (name, len(unsafe), len(harmful))
        benign = [r for r in data[name] if r["kind"] != "harmful"]
        assert benign and all(reply_of(r) in by_prompt[(r.get("prompt") or r["messages"])[0]["content"]].replies
                              for r in benign)
    # the held-out general prompts are the clean side: their references are never compliance
    assert data["general_eval"] and all(r["answer"] in by_prompt[r["prompt"][0]["content"]].replies
                                        for r in data["general_eval"])


def test_both_languages_and_language_mix():
    rows = toy.build(replace(SMALL, coldstart_language_mix=0.5))
    for name in ("rl", "eval", "coldstart", "coldstart_general", "general", "general_eval", "helpful_pairs", "safety",
                 "rl_tools", "coldstart_tools", "eval_tools"):
        langs = [r["language"] for r in rows[name]]
        assert 0.25 < langs.count("zh") / len(langs) < 0.75, name
        for r in rows[name]:
            user = (r.get("prompt") or r.get("messages"))[0]["content"]
            assert bool(CJK.search(user)) == (r["language"] == "zh") or r.get("kind") == "translate", (name, user)
    zh_cots = [split_completion(r["messages"][-1]["content"])[0] for r in rows["coldstart"] if r["language"] == "zh"]
    english = [c for c in zh_cots if re.search(r"[A-Za-z]{3,}", c)]
    assert 0.1 < len(english) / len(zh_cots) < 0.6  # about half of them drift into English


def test_pairs_and_safety_labels():
    rows = toy.build(SMALL)
    assert len(rows["helpful_pairs"]) == SMALL.n_helpful_pairs and len(rows["safety"]) == SMALL.n_safety
    for r in rows["helpful_pairs"]:
        assert r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant"
        assert r["chosen"][0]["content"] != r["rejected"][0]["content"]
    labels = [r["label"] for r in rows["safety"]]
    assert set(labels) == {0, 1}
    for r in rows["safety"]:
        harmful = any(x in r["prompt"][0]["content"] for x, _ in toy_general.HARMFUL) or \
            any(z in r["prompt"][0]["content"] for _, z in toy_general.HARMFUL)
        if r["label"] == 0:
            assert harmful  # only compliance with a harmful request is unsafe


def test_bad_config_is_a_user_error():
    from r1cli.errors import UserError

    with pytest.raises(UserError, match="n_eval"):
        toy.build(replace(SMALL, n_eval=100_000))
    with pytest.raises(UserError, match="zh_fraction"):
        toy.build(replace(SMALL, zh_fraction=1.5))


def test_refuses_existing_out_without_force(toy_data, run_r1, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    res = run_r1("toy", "data", out)
    assert res.returncode == 2 and "--force" in res.stderr and "Traceback" not in res.stderr
    assert list(out.iterdir()) == []
    res = run_r1("toy", "data", tmp_path / "bad", "--set", "n_eval=100000")
    assert res.returncode == 2 and "n_eval" in res.stderr
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


# --- the tokenizer and the base ------------------------------------------------------------------


TEXTS = ["(12+7)*3等于多少？", "<think>\n先算12+7=19，再算19*3=57。\n</think>\n答案是\\boxed{57}。",
         "Think in <think> </think>, then answer in <answer> </answer>. User: What is (1+2)*3? Assistant: <answer> 9 </answer>",
         "  two  spaces\nand lines\n\n", "Tom's \"apples\": 0123456789"]


@pytest.fixture(scope="module")
def base_tokenizer(toy_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(toy_base)


def test_tokenizer_round_trips_a_word_per_token_and_a_digit_per_token(base_tokenizer):
    tok = base_tokenizer
    for text in TEXTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.decode(ids, skip_special_tokens=True) == text  # as TRL decodes completions
    # every word of the toy world is one token (copying a word is copying one token), with its leading space
    assert tok.tokenize("Repeat after me: white car") == ["Repeat", " after", " me", ":", " white", " car"]
    # a digit is always the same token, after a space or not (copying operands)
    assert tok.tokenize("(12+7)*3 is 3") == ["(", "1", "2", "+", "7", ")", "*", "3", " is", " ", "3"]
    # a word the toy world never says still encodes, piece by piece, and nothing becomes <unk>
    assert tok.decode(tok("Think about zebras", add_special_tokens=False)["input_ids"]) == "Think about zebras"
    assert tok.unk_token_id not in tok("".join(TEXTS) + toy.alphabet() + "zebra Qx", add_special_tokens=False)["input_ids"]


def test_tokenizer_round_trips_the_toy_corpus():
    import itertools

    from r1cli.toy import corpus
    from r1cli.toy.base import build_tokenizer

    tok = build_tokenizer()
    docs = list(itertools.islice(corpus.documents(3), 1000))  # another seed than the vocabulary was learned from
    for d in docs:
        assert tok.decode(tok(d, add_special_tokens=False)["input_ids"]) == d
    assert tok.unk_token_id not in tok("".join(docs), add_special_tokens=False)["input_ids"]
    assert len(tok("".join(docs), add_special_tokens=False)["input_ids"]) < len("".join(docs)) / 1.4


def test_reasoning_tags_are_single_non_special_tokens(base_tokenizer):
    tok = base_tokenizer
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        ids = tok(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] not in tok.all_special_ids, tag
    assert tok.eos_token == "<|end|>" and tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id


def test_base_loads_and_chat_template_works(toy_base, base_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    tok = base_tokenizer
    model = AutoModelForCausalLM.from_pretrained(toy_base)
    chat = [{"role": "user", "content": "(1+2)*3?"}]
    prompt = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert prompt == "<|user|>(1+2)*3?<|end|><|assistant|>" and not generation_prefills_think(tok)
    full = tok.apply_chat_template(chat + [{"role": "assistant", "content": "<think>\n3*3=9\n</think>\n9"}], tokenize=False)
    assert full.startswith(prompt) and full.endswith("9<|end|>")
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1] and torch.equal(out[0, :ids.shape[1]], ids[0])
    assert model.config.vocab_size == len(tok) and model.config.eos_token_id == tok.eos_token_id


def test_base_manifest_and_loss_curve(toy_base):
    m = json.loads((toy_base / "r1.json").read_text())
    assert m["kind"] == "checkpoint" and m["stage"] == "toy-base" and m["counts"]["steps"] == 30
    for key in ("final_loss", "params", "zero_shot_r1_accuracy", "zero_shot_r1_format_rate",
                "zero_shot_r1zero_accuracy", "zero_shot_r1zero_format_rate"):
        assert key in m["metrics"], key
    # the copy probe runs on every base: a share of its held-out prompts of each kind (a 30-step base copies little)
    for kind in ("repeat", "repeat_cot", "translate", "operands"):
        assert 0 <= m["metrics"][f"copy_{kind}"] <= 1
    assert m["metrics"]["starts"] == 1 and m["metrics"]["start_seed"] == 0  # attempts=1: one start, copying or not
    assert m["metrics"]["precision"] == ("bf16" if tb.use_bf16("auto") else "fp32")
    curve = [json.loads(line) for line in (toy_base / "metrics.jsonl").read_text().splitlines()]
    assert curve[0]["step"] == 1 and curve[-1]["step"] == 30 and curve[-1]["loss"] < curve[0]["loss"]


@pytest.mark.parametrize("probes, starts, kept", [
    ([0.1, 0.9], 2, 1),        # the first start copies too little: another start, which copies, is kept
    ([0.1, 0.3, 0.2], 3, 1),   # none copies enough after all three: the one that copies most is kept
    ([0.9], 1, 0),             # the first copies: one start
])
def test_a_base_that_copies_too_little_is_pretrained_again_from_another_start(monkeypatch, tmp_path, probes, starts, kept):
    import torch

    from r1cli.stages.toy import make_toy_base

    seeds, left = [], list(probes)
    monkeypatch.setattr(tb, "pretrain", lambda model, data, cfg, log: (log({"step": 1, "loss": 1.0}), 1.0)[1])
    monkeypatch.setattr(tb, "packed_corpus", lambda tok, seed, rows, length: (seeds.append(seed), torch.zeros(rows, length, dtype=torch.long))[1])
    monkeypatch.setattr(tb, "copy_probe", lambda model, tok: {"copy_repeat": 1.0, "copy_repeat_cot": 1.0, "copy_translate": 1.0,
                                                              "copy_operands": left.pop(0)})
    cfg = ToyBaseConfig(seed=7, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_length=32, steps=2,
                        eval_prompts=0)
    make_toy_base(cfg, tmp_path / "base")
    m = json.loads((tmp_path / "base" / "r1.json").read_text())["metrics"]
    assert seeds == [7, 1007, 2007][:starts]  # each start its own weights and corpus order
    assert m["starts"] == starts and m["start_seed"] == seeds[kept] and m["copy_operands"] == probes[kept]
    assert m["probe_passed"] == (probes[kept] >= cfg.min_copy)
    assert [t["copy_operands"] for t in m.get("starts_tried", [])] == (probes if starts > 1 else [])
    curve = [json.loads(line) for line in (tmp_path / "base" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["attempt"]) for r in curve] == [(1 + 2 * i, i + 1) for i in range(starts)]  # one curve


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_pretraining_in_either_precision_learns_and_keeps_fp32_weights(base_tokenizer, precision):
    import torch

    torch.manual_seed(0)
    cfg = ToyBaseConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_length=32, steps=30,
                        batch_size=2, learning_rate=1e-2, precision=precision)
    model = tb.build_model(cfg, base_tokenizer)
    data = tb.packed_corpus(base_tokenizer, 0, 2, cfg.max_length).repeat(cfg.steps, 1)  # one batch over and over
    curve = []
    tb.pretrain(model, data, cfg, curve.append)
    assert curve[-1]["loss"] < curve[0]["loss"] / 2
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert tb.use_bf16(precision) == (precision == "bf16")


def test_copy_probe_scores_a_perfect_copier_1_and_a_stock_phrase_0(monkeypatch):
    """The probe's scoring, with a stand-in generator: one that copies (the phrase, the reference translation,
    the working from the problem's operands) scores 1 on every kind, one that says a stock phrase 0, and
    one that copies the summands but not the multiplier 0 on operands."""
    import re as re_

    from r1cli.toy import general as g

    references = {g.chat(it.prompt)[0]["content"]: it.replies[0] for it in g.ITEMS}

    class Out:
        def __init__(self, text):
            self.text = text

    class Copier:
        def generate(self, prompts, sampling):
            outs = []
            for p in prompts:
                if isinstance(p, list):
                    outs.append([Out(references[p[0]["content"]])])
                elif p.startswith("<|user|>"):  # a rendered request with its CoT pre-filled: the reply alone
                    assert p.endswith("\n</think>\n")
                    outs.append([Out(references[p.removeprefix("<|user|>").split("<|end|>")[0]])])
                else:  # "Q: What is (a+b)*c?\nA:" or a word problem: its three numbers are the operands
                    a, b, c = re_.findall(r"\d+", p)[:3]
                    outs.append([Out(f" {a}+{b}=0. 0*{self.multiplier or c}=0.")])
            return outs

        def __init__(self, multiplier=None):
            self.multiplier = multiplier  # a guessed multiplier: the summands alone do not count

    class Stock:
        def generate(self, prompts, sampling):
            return [[Out("pink book 1+1=2")] for _ in prompts]

    class Tok:  # the toy chat template's generation prompt
        chat_template = "toy"

        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            return f"<|user|>{messages[0]['content']}<|end|><|assistant|>"

    for gen, want in ((Copier(), 1.0), (Stock(), 0.0)):
        monkeypatch.setattr(tb, "load_generator", lambda _pair, gen=gen: gen)
        got = tb.copy_probe(None, Tok(), n=20)
        assert got == {"copy_repeat": want, "copy_translate": want, "copy_repeat_cot": want, "copy_operands": want}
    monkeypatch.setattr(tb, "load_generator", lambda _pair: Copier(multiplier=99))
    assert tb.copy_probe(None, Tok(), n=20)["copy_operands"] == 0.0
