"""Property tests: every registered reward (r1cli.rewards.REWARDS: the rule rewards, `code` in the
sandbox, the RM rewards on a tiny reward model) takes random unicode, nested and unbalanced tags,
empty completions, chat-message completions and megabyte strings without raising, and returns
one float (or None) per completion in range. `accuracy` goes through the math-verify worker
pool with its hard deadline. (No timings asserted: a quadratic regex would show up as this file
taking minutes.)"""

import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1cli.rewards import REWARDS, get_reward

sys.path.insert(0, str(Path(__file__).parent))

TAGS = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "\n", "$", "$$", "\\(", "\\)", "```", "`",
        "\\frac{", "Step 1:", "首先", "9^{9^{9^9}}", "\\left(", " "]

piece = st.one_of(st.text(max_size=30), st.sampled_from(TAGS))
nested = st.lists(piece, max_size=40).map("".join)
big = st.builds(lambda s, n: (s * n)[: 1 << 20], st.one_of(st.sampled_from(TAGS), st.text(min_size=1, max_size=6)),
                st.integers(1_000, 400_000))
# a fenced block of random text (or a small hostile program): what the code reward runs in the sandbox
programs = st.sampled_from(["print(1)", "while True: pass", "import sys; sys.exit(3)", "print('x' * 10**7)", "echo 3"])
fenced = st.builds(lambda lang, body: f"<think>\nx\n</think>\n```{lang}\n{body}\n```", st.sampled_from(["python", "bash", ""]),
                   st.one_of(nested, programs))
completion = st.one_of(st.just(""), st.text(), nested, big, fenced,
                       nested.map(lambda t: [{"role": "assistant", "content": t}]))
RANGES = {
    "accuracy": (0.0, 1.0), "format": (0.0, 1.0), "language": (0.0, 1.0), "reasoning_steps": (0.0, 1.0),
    "length": (-0.5, 0.5), "cosine": (-1.0, 1.0), "repetition": (-1.0, 0.0), "overlong": (-1.0, 0.0),
}
# the rewards that run a program or a model per completion: fewer examples
SLOW_RANGES = {"code": (0.0, 1.0), "helpfulness": (0.0, 1.0), "harmlessness": (0.0, 1.0)}
OPTIONS = {"timeout": 1.0, "max_completion_len": 512, "workers": 1}
# a row's `tests` for the code reward (small stdin -> stdout cases)
TESTS = st.lists(st.fixed_dictionaries({"input": st.sampled_from(["", "1 2\n", "x"]),
                                        "output": st.sampled_from(["", "3", "x\n"])}), min_size=1, max_size=2)


def test_every_registered_reward_is_covered():
    assert set(RANGES) | set(SLOW_RANGES) == set(REWARDS)


@pytest.fixture(scope="module")
def rewards(tmp_path_factory):
    """Every registered reward; the RM rewards on a random one-label Llama (the tiny test LM's shape)."""
    import torch
    from tiny_lm import tiny_tokenizer
    from transformers import LlamaConfig, LlamaForSequenceClassification

    rm = tmp_path_factory.mktemp("props") / "rm"
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id, num_labels=1))
    model.save_pretrained(rm)
    tok.save_pretrained(rm)
    options = dict(OPTIONS, helpful_rm=str(rm), harmless_rm=str(rm))
    return {name: get_reward(name, **options) for name in [*RANGES, *SLOW_RANGES]}


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                        HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", sorted(RANGES))
@settings(max_examples=40, **_SETTINGS)
@given(data=st.data())
def test_reward_never_raises_and_stays_in_range(rewards, name, data):
    check_random_batch(rewards[name], name, RANGES[name], data)


@pytest.mark.parametrize("name", sorted(SLOW_RANGES))
@settings(max_examples=8, **_SETTINGS)
@given(data=st.data())
def test_sandbox_and_rm_rewards_never_raise(rewards, name, data):
    check_random_batch(rewards[name], name, SLOW_RANGES[name], data, st.one_of(fenced, completion))


def check_random_batch(fn, name, bounds, data, completions=completion):
    n = data.draw(st.integers(1, 4))
    comps = data.draw(st.lists(completions, min_size=n, max_size=n))
    columns = {
        "answer": data.draw(st.lists(st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["42", "\\frac12", "(1,2]"])),
                                     min_size=n, max_size=n)),
        "language": data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["en", "zh", "ja", "xx", ""])), min_size=n, max_size=n)),
        "domain": data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["math", "general", "code", "logic"])),
                                     min_size=n, max_size=n)),
    }
    prompts = data.draw(st.lists(st.one_of(st.text(max_size=50), nested.map(lambda t: [{"role": "user", "content": t}])),
                                 min_size=n, max_size=n))
    columns["tests"] = data.draw(st.lists(TESTS, min_size=n, max_size=n))
    ids = data.draw(st.one_of(st.none(), st.just([[0] * len(str(c)) for c in comps])))
    out = fn(prompts, comps, completion_ids=ids, **columns)
    assert len(out) == n
    lo, hi = bounds
    for v in out:
        assert v is None or (isinstance(v, float) and math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9), (name, v)


@pytest.mark.parametrize("name", sorted(RANGES) + sorted(SLOW_RANGES))
def test_megabyte_pathological_completions(rewards, name):
    mb = 1 << 20
    comps = ["<think>\n" + "a" * mb, "\\boxed{" * (mb // 7), "<think>" * (mb // 7) + "</think>", "\\(" * (mb // 2),
             "<think>\n" + "首先 add " * (mb // 8) + "\n</think>\n\\boxed{" + "1" * 50_000 + "}", "$$" + "x" * mb,
             "```python\n" + "x = 1\n" * (mb // 6) + "```", "```python\n" + "(" * mb + "\n```",
             "<think>\n</think>\n\\boxed{9^{9^{9^{9^{9}}}}}", [{"role": "assistant", "content": "<think>" * 1000}]]
    if name in ("helpfulness", "harmlessness"):  # the char tokenizer takes seconds per megabyte: one is enough
        comps = comps[:1] + comps[-2:]
    n = len(comps)
    out = rewards[name]([""] * n, comps, answer=["42"] * n, language=["zh"] * n,
                        tests=[[{"input": "", "output": "1"}]] * n)
    assert len(out) == n
    lo, hi = (RANGES | SLOW_RANGES)[name]
    assert all(v is None or lo - 1e-9 <= v <= hi + 1e-9 for v in out), out
    if name == "accuracy":  # the tower of powers is no cheap case: it went to a worker, under the deadline
        assert rewards[name].stats["verified"] > 0
