"""Property tests: every rule reward takes random unicode, nested tags, empty completions and
megabyte strings without raising, and returns one float (or None) per completion in range.
(No timings asserted: a quadratic regex would show up as this file taking minutes.)"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1cli.rewards import get_reward

TAGS = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "\n", "$", "$$", "\\(", "\\)", "```", "`",
        "\\frac{", "Step 1:", "首先", "9^{9^{9^9}}", "\\left(", " "]

piece = st.one_of(st.text(max_size=30), st.sampled_from(TAGS))
nested = st.lists(piece, max_size=40).map("".join)
big = st.builds(lambda s, n: (s * n)[: 1 << 20], st.one_of(st.sampled_from(TAGS), st.text(min_size=1, max_size=6)),
                st.integers(1_000, 400_000))
completion = st.one_of(st.just(""), st.text(), nested, big,
                       nested.map(lambda t: [{"role": "assistant", "content": t}]))
RANGES = {
    "accuracy": (0.0, 1.0), "format": (0.0, 1.0), "language": (0.0, 1.0), "reasoning_steps": (0.0, 1.0),
    "length": (-0.5, 0.5), "cosine": (-1.0, 1.0), "repetition": (-1.0, 0.0), "overlong": (-1.0, 0.0),
}
OPTIONS = {"timeout": 1.0, "max_completion_len": 512}


@pytest.fixture(scope="module")
def rewards():
    return {name: get_reward(name, **{k: v for k, v in OPTIONS.items()}) for name in RANGES}


@pytest.mark.parametrize("name", sorted(RANGES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reward_never_raises_and_stays_in_range(rewards, name, data):
    n = data.draw(st.integers(1, 4))
    comps = data.draw(st.lists(completion, min_size=n, max_size=n))
    columns = {
        "answer": data.draw(st.lists(st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["42", "\\frac12", "(1,2]"])),
                                     min_size=n, max_size=n)),
        "language": data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["en", "zh", "ja", "xx", ""])), min_size=n, max_size=n)),
        "domain": data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["math", "general", "code", "logic"])),
                                     min_size=n, max_size=n)),
    }
    prompts = data.draw(st.lists(st.one_of(st.text(max_size=50), nested.map(lambda t: [{"role": "user", "content": t}])),
                                 min_size=n, max_size=n))
    ids = data.draw(st.one_of(st.none(), st.just([[0] * len(str(c)) for c in comps])))
    out = rewards[name](prompts, comps, completion_ids=ids, **columns)
    assert len(out) == n
    lo, hi = RANGES[name]
    for v in out:
        assert v is None or (isinstance(v, float) and math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9), (name, v)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_megabyte_pathological_completions(rewards, name):
    mb = 1 << 20
    comps = ["<think>\n" + "a" * mb, "\\boxed{" * (mb // 7), "<think>" * (mb // 7) + "</think>", "\\(" * (mb // 2),
             "<think>\n" + "首先 add " * (mb // 8) + "\n</think>\n\\boxed{" + "1" * 50_000 + "}", "$$" + "x" * mb]
    out = rewards[name]([""] * len(comps), comps, answer=["42"] * len(comps), language=["zh"] * len(comps))
    assert len(out) == len(comps)
