"""The tool loop (r1cli/tools/loop.py) over a scripted generator: calls run, results go back through
the chat template, the model's own text is what rewards read, bad calls never stop a sample."""

from __future__ import annotations

import json

from r1cli.config import SamplingConfig
from r1cli.evaluation import score, reward_functions
from r1cli.generation import Completion
from r1cli.tools import ToolSettings, resolve_tools
from r1cli.tools.loop import ToolLoop, model_text, trajectory_messages
from test_tools import tokenizer_with


def call(expression: str) -> str:
    return "<tool_call>\n" + json.dumps({"name": "calculator", "arguments": {"expression": expression}}) + "\n</tool_call>"


class Scripted:
    """Answers each prompt with the next reply of a script chosen by what the prompt ends with."""

    def __init__(self, tokenizer, script):
        self.tokenizer, self.script, self.prompts = tokenizer, script, []

    def generate(self, prompts, sampling, n=1, seed=0, progress=None):
        self.prompts.append(prompts)
        out = []
        for p in prompts:
            text = next(reply for key, reply in self.script if p.endswith(key))
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            reason = "length" if len(ids) > sampling.max_new_tokens else "stop"
            ids = ids[:sampling.max_new_tokens]
            out.append([Completion(text=self.tokenizer.decode(ids), token_ids=ids, num_tokens=len(ids), finish_reason=reason)
                        for _ in range(n)])
        return out


def loop(script, **settings):
    tok = tokenizer_with("qwen2_5.jinja")
    cfg = ToolSettings(tools=["calculator"], **settings)
    gen = Scripted(tok, script)
    return ToolLoop(gen, resolve_tools(cfg.tools, cfg), cfg), gen


def test_a_call_runs_and_the_model_goes_on():
    think = "<think>\nlong numbers: the calculator\n</think>\n"
    script = [("<tool_response>\n287663\n</tool_response><|im_end|>\n<|im_start|>assistant\n", "So \\boxed{287663}."),
              ("assistant\n", think + call("347*829") + " text after the call is dropped")]
    tl, gen = loop(script)
    [[c]] = tl.generate([[{"role": "user", "content": "Compute 347*829."}]], SamplingConfig(max_new_tokens=1000))
    assert c.tool_calls == 1 and c.tool_failures == 0
    assert model_text(c) == think + call("347*829") + "So \\boxed{287663}."
    assert "287663\n</tool_response>" in c.text and "dropped" not in c.text
    assert gen.prompts[1][0].endswith(c.text[: c.text.index("So")])  # the trajectory so far is the next prompt
    assert [m["role"] for m in trajectory_messages(c.turns)] == ["assistant", "tool", "assistant"]
    assert trajectory_messages(c.turns)[1] == {"role": "tool", "name": "calculator", "content": "287663"}
    assert trajectory_messages(c.turns, prefilled=True, names=False)[:2] == [
        {"role": "assistant", "content": "<think>\n" + c.turns[0][1]}, {"role": "tool", "content": "287663"}]
    assert tl.stats.metrics() == {"tools/call_frequency": 1.0, "tools/failure_frequency": 0.0}


def test_rewards_read_the_model_text_not_the_tool_output():
    think = "<think>\nI call it.\n</think>\n"
    script = [("</tool_response><|im_end|>\n<|im_start|>assistant\n", "So \\boxed{12}."),
              ("assistant\n", think + call("3*4"))]
    tl, _ = loop(script)
    prompt = [{"role": "user", "content": "3*4?"}]
    outs = tl.generate([prompt], SamplingConfig(max_new_tokens=1000), n=2)
    rows = score([{"prompt": prompt, "answer": "12", "domain": "math", "language": "en"}], outs,
                 reward_functions("r1", False), False, 0.95)
    assert [r["reward_accuracy"] for r in rows] == [1.0, 1.0]
    assert [r["extracted_answer"] for r in rows] == ["12", "12"]
    assert rows[0]["tool_calls"] == 1 and rows[0]["completion"] != model_text(outs[0][0])


def test_bad_calls_become_messages_and_calls_are_bounded():
    # the model calls again and again, a malformed call first: the loop ends after max_tool_calls + 1
    bad = "<tool_call>\n{not json\n</tool_call>"
    script = [("</tool_response><|im_end|>\n<|im_start|>assistant\n", call("1/0")), ("assistant\n", bad)]
    tl, _ = loop(script, max_tool_calls=2)
    [[c]] = tl.generate([[{"role": "user", "content": "?"}]], SamplingConfig(max_new_tokens=4000))
    results = [t[2] for t in c.turns if t[0] == "tool"]
    assert len(results) == 3 and c.tool_failures == 3
    assert "not valid JSON" in results[0] and "ZeroDivisionError" in results[1] and "no more tool calls" in results[2]
    assert tl.stats.counts()["tool_failures_by_reason"] == {"limit": 1, "malformed": 1, "raised": 1}


def test_the_trajectory_stays_within_max_new_tokens():
    script = [("</tool_response><|im_end|>\n<|im_start|>assistant\n", "word " * 300), ("assistant\n", call("2+2"))]
    tl, _ = loop(script)
    for budget in (60, 150, 400):  # the call alone, the call and its result, then the answer cut
        [[c]] = tl.generate([[{"role": "user", "content": "?"}]], SamplingConfig(max_new_tokens=budget))
        assert c.finish_reason == "length"
        assert c.num_tokens <= budget and len(c.token_ids) == c.num_tokens


# --- GRPO's token-level loop -------------------------------------------------------------------------


def test_token_loop_masks_results_and_keeps_the_budget():
    from r1cli.tools.loop import TokenToolLoop
    from r1cli.toy.base import build_tokenizer

    tok = build_tokenizer()
    cfg = ToolSettings(tools=["calculator"])
    loop = TokenToolLoop(tok, resolve_tools(cfg.tools, cfg), cfg)
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tok.eos_token_id
    first = enc("<think>\nlong\n</think>\n" + call("347*829")) + enc(" junk") + [eos]
    answer = enc("So the result is \\boxed{287663}.") + [eos]
    seen = []

    def sample(prompts, budget, seed):
        seen.append(prompts)
        return [answer[:budget] for _ in prompts]

    prompt = enc("<|user|>Compute 347*829.<|end|><|assistant|>")
    [ids], [mask] = loop.run([prompt], [list(first)], 200, sample, seed=0)
    glue = enc("<|end|><|tool|>287663<|end|><|assistant|>")
    call_ids = first[:first.index(tok.convert_tokens_to_ids("</tool_call>")) + 1]
    assert ids == call_ids + glue + answer
    assert mask == [1] * len(call_ids) + [0] * len(glue) + [1] * len(answer)
    assert seen[0] == [prompt + call_ids + glue]  # the model goes on from its call and the result
    assert loop.runner.stats.calls == 1 and not loop.runner.stats.failures
    # a budget with no room for the result ends the completion at its call; a small one cuts the answer
    [ids], [mask] = loop.run([prompt], [list(first)], len(call_ids) + 3, sample, seed=0)
    assert ids == call_ids and mask == [1] * len(call_ids)
    [ids], [mask] = loop.run([prompt], [list(first)], len(call_ids) + len(glue) + 4, sample, seed=0)
    assert len(ids) == len(call_ids) + len(glue) + 4 and mask[-4:] == [1] * 4


def test_round_seeds_fit_a_torch_generator():
    import torch

    from r1cli.tools.loop import round_seed

    for seed in (0, 2**31 - 1, 2**62 - 1):
        torch.Generator().manual_seed(round_seed(seed, 3) * 1_000_003 + 7)  # a backend multiplies it again
    assert round_seed(5, 0) != round_seed(5, 1)
