"""The toy world's calculator task (reasoning with tools): the chat template renders calls and tool
turns as r1cli.tools expects them, a call is a few dozen tokens, the held-out products stay held out,
and `r1 toy data` writes the three `*_tools` splits without changing the other splits."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from r1cli.config import ToyDataConfig
from r1cli.data import load_prompts, load_sft
from r1cli.templates import extract_answer
from r1cli.tools import calculator, check_template, parse_tool_calls, render_tool_result
from r1cli.toy import problems as toy

SMALL = ToyDataConfig(n_rl=50, n_coldstart=50, n_eval=20, n_general=50, n_general_eval=20, n_helpful_pairs=20,
                      n_helpful_pairs_eval=20, n_safety=20, n_coldstart_general=20,
                      n_rl_tools=300, n_coldstart_tools=200, n_eval_tools=150)
TOOL_SPLITS = ("rl_tools", "coldstart_tools", "eval_tools")
CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "347*829"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tok():
    from r1cli.toy.base import build_tokenizer

    return build_tokenizer()


def factors(row) -> tuple[int, int]:
    """(lo, hi) of a calculator-task row: every phrasing names a, then b."""
    user = row["prompt"][-1]["content"] if "prompt" in row else row["messages"][0]["content"]
    a, b = map(int, re.findall(r"\d+", user))
    return min(a, b), max(a, b)


# --- the chat template ---------------------------------------------------------------------------


def test_template_renders_a_trajectory(tok):
    messages = [{"role": "user", "content": "Compute 347*829."},
                {"role": "assistant", "content": f"<think>\nI use the calculator.\n</think>\n{CALL}"},
                {"role": "tool", "name": "calculator", "content": "287663"},
                {"role": "assistant", "content": "So the result is \\boxed{287663}."}]
    want = ("<|user|>Compute 347*829.<|end|><|assistant|><think>\nI use the calculator.\n</think>\n" + CALL
            + "<|end|><|tool|>287663<|end|><|assistant|>So the result is \\boxed{287663}.<|end|>")
    assert tok.apply_chat_template(messages, tokenize=False) == want
    # the same call given as structured tool_calls (TRL's format) renders as the same text
    structured = [{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "347*829"}}}]
    as_call = [messages[0], {"role": "assistant", "content": "<think>\nI use the calculator.\n</think>",
                             "tool_calls": structured}, *messages[2:]]
    assert tok.apply_chat_template(as_call, tokenize=False) == want
    # two calls and no content: one call a line, as Qwen2.5 writes them
    two = [messages[0], {"role": "assistant", "content": "", "tool_calls": structured * 2}]
    assert tok.apply_chat_template(two, tokenize=False).endswith(f"<|assistant|>{CALL}\n{CALL}<|end|>")
    # the model's tokens (the assistant-only loss) are its two turns, the call included, not the tool's result
    ids = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    own = [i for i, m in zip(ids["input_ids"], ids["assistant_masks"]) if m]
    assert tok.decode(own) == messages[1]["content"] + "<|end|>" + messages[3]["content"] + "<|end|>"


def test_template_supports_tools_and_ignores_the_tools_list(tok):
    check_template(tok)
    assert render_tool_result(tok, [("calculator", "42")]) == "<|end|><|tool|>42<|end|><|assistant|>"
    prompt = [{"role": "user", "content": "Compute 347*829."}]
    tools = [{"type": "function", "function": {"name": "calculator", "parameters": {}}}]
    plain = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert plain == "<|user|>Compute 347*829.<|end|><|assistant|>"
    assert tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, tools=tools) == plain


def test_a_call_is_a_few_dozen_tokens_and_digits_stay_single(tok):
    pieces = tok.tokenize(CALL)
    assert len(pieces) <= 40, pieces
    for word in ("<tool_call>", "</tool_call>", "name", "arguments", "expression", "calculator"):
        assert word in pieces, word
    assert pieces[pieces.index("expression") + 5:][:7] == list("347*829")
    assert all(tok.tokenize(d) == [d] and tok.tokenize(" " + d) == [" ", d] for d in "0123456789")
    # the tags are not special (TRL decodes completions with skip_special_tokens=True), the tool's role marker is
    special = {t: tok.added_tokens_decoder[tok.convert_tokens_to_ids(t)].special for t in ("<tool_call>", "</tool_call>", "<|tool|>")}
    assert special == {"<tool_call>": False, "</tool_call>": False, "<|tool|>": True}
    ids = tok(CALL + "<|end|><|tool|>", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == CALL


# --- the data ------------------------------------------------------------------------------------


def test_answers_are_exact_and_eval_products_are_held_out():
    rows = toy.build(SMALL)
    for name in ("rl_tools", "eval_tools"):
        assert len(rows[name]) == getattr(SMALL, f"n_{name}")
        for r in rows[name]:
            a, b = factors(r)
            assert toy.FACTOR_MIN <= a <= b <= toy.FACTOR_MAX and r["answer"] == str(a * b) and r["domain"] == "math"
    held_out = {factors(r) for r in rows["eval_tools"]}
    assert len(held_out) == len(rows["eval_tools"])  # one row per product
    assert all(toy.product_eval_side(*p) for p in held_out)
    # fixed by the product, not by the seed: no seed trains on a held-out product
    for seed in (0, 7):
        other = toy.build(replace(SMALL, seed=seed))
        assert not held_out & {factors(r) for r in other["rl_tools"] + other["coldstart_tools"]}


def test_coldstart_trajectories_call_the_calculator_and_box_its_result():
    rows = toy.build(SMALL)["coldstart_tools"]
    assert len(rows) == SMALL.n_coldstart_tools and {r["language"] for r in rows} == {"en", "zh"}
    for r in rows:
        user, calling, result, answer = r["messages"]
        assert [m["role"] for m in r["messages"]] == ["user", "assistant", "tool", "assistant"]
        assert calling["content"].startswith("<think>\n") and "\n</think>\n<tool_call>\n" in calling["content"]
        [call] = parse_tool_calls(calling["content"])
        a, b = factors(r)
        assert call.name == "calculator" and call.arguments["expression"] in (f"{a}*{b}", f"{b}*{a}")
        # the CoT starts from the product, so the call copies it from a few tokens back
        assert calling["content"].startswith(f"<think>\n{call.arguments['expression']}\n")
        assert result == {"role": "tool", "name": "calculator", "content": calculator(call.arguments["expression"])}
        assert extract_answer(answer["content"]) == str(a * b)
        assert bool(re.search(r"[\u4e00-\u9fff]", user["content"] + answer["content"])) == (r["language"] == "zh")


def test_other_splits_do_not_depend_on_the_tool_splits():
    """Each split has its own RNG: the tool splits' counts change no other split's rows, and theirs
    do not depend on the other counts."""
    base = toy.build(SMALL)
    more = toy.build(replace(SMALL, n_rl_tools=10, n_coldstart_tools=10, n_eval_tools=10))
    assert {k: v for k, v in base.items() if k not in TOOL_SPLITS} == {k: v for k, v in more.items() if k not in TOOL_SPLITS}
    other = toy.build(replace(SMALL, n_rl=10, n_coldstart=10, n_eval=10))
    assert all(base[k] == other[k] for k in TOOL_SPLITS)


def test_toy_data_writes_the_tool_splits(run_r1, tmp_path):
    out = tmp_path / "data"
    sets = ["n_rl=8", "n_coldstart=8", "n_eval=8", "n_general=8", "n_general_eval=8", "n_helpful_pairs=8",
            "n_helpful_pairs_eval=8", "n_safety=8", "n_coldstart_general=8",
            "n_rl_tools=12", "n_coldstart_tools=10", "n_eval_tools=6"]
    res = run_r1("toy", "data", out, "--seed", "0", *[x for s in sets for x in ("--set", s)])
    assert res.returncode == 0, res.stderr
    counts = json.loads((out / "r1.json").read_text())["counts"]
    assert {name: counts[name] for name in TOOL_SPLITS} == {"rl_tools": 12, "coldstart_tools": 10, "eval_tools": 6}
    for name, load, kind in (("rl_tools", load_prompts, "prompts"), ("coldstart_tools", load_sft, "sft"),
                             ("eval_tools", load_prompts, "prompts")):
        assert len(load(out / name)) == counts[name]  # the canonical schema's check passes
        assert json.loads((out / name / "r1.json").read_text())["metrics"]["schema"] == kind


def test_sft_masks_tool_turns_so_tool_tokens_carry_no_gradient(tok):
    """r1 sft's tokenization of a trajectory: loss on the assistant turns only; a backward pass through a
    model gives the logits that predict the tool result's tokens a zero gradient."""
    import torch
    from datasets import Dataset

    from r1cli.config import ToyBaseConfig
    from r1cli.stages.sft import check_rows, tokenize
    from r1cli.toy.base import build_model

    import random

    messages = toy.coldstart_tool_rows(random.Random(0), 1, 0.0)[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    ds = Dataset.from_list([{"messages": messages}])
    check_rows(ds, "rows", require_reasoning=True)  # the R1 format is read across the assistant turns
    [out] = tokenize(ds, tok, None)[0].to_list()
    ids, mask = out["input_ids"], out["completion_mask"]
    trained = tok.decode([t for t, m in zip(ids, mask) if m])
    assert trained == messages[1]["content"] + "<|end|>" + messages[3]["content"] + "<|end|>"
    tool_span = tok(f"<|tool|>{messages[2]['content']}<|end|>", add_special_tokens=False)["input_ids"]
    masked = [t for t, m in zip(ids, mask) if not m]
    assert masked[-len(tool_span) - 1:-1] == tool_span  # the tool turn, then the next turn's header: no loss

    model = build_model(ToyBaseConfig(num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64), tok)
    x = torch.tensor([ids])
    logits = model(x).logits
    logits.retain_grad()
    labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask)]])
    torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100).backward()
    grad = logits.grad[0, :-1].abs().sum(-1)  # position i predicts token i + 1
    for i in range(len(ids) - 1):
        assert (grad[i] > 0) == bool(mask[i + 1]), i


def test_trl_can_parse_a_toy_reply_and_render_it_back(tok, tmp_path):
    """TRL's own tool loop (GRPO with vLLM) parses each reply with the tokenizer's response template and renders
    the conversation again: the toy's gives back the text the model wrote, after a save and load too."""
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = '<think>\nlong\n</think>\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "347*829"}}\n</tool_call>'
    prompt = [{"role": "user", "content": "Compute 347*829."}]
    prefix = loaded.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    reply = loaded.parse_response(loaded(text + "<|end|>", add_special_tokens=False)["input_ids"], prefix=prefix)
    assert reply["tool_calls"][0]["function"] == {"name": "calculator", "arguments": {"expression": "347*829"}}
    assert loaded.apply_chat_template(prompt + [reply], tokenize=False) == prefix + text + "<|end|>"
