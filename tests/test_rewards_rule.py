"""Registry and the rule rewards: format, language, reasoning_steps, length, cosine, repetition,
overlong; dotted-path user rewards; option and weight mistakes as UserErrors."""

import sys
import textwrap

import pytest

from r1cli.errors import UserError
from r1cli.rewards import REWARDS, get_reward, known_options, resolve_rewards
from r1cli.rewards.language import detect_language, language_consistency

R1 = "<think>\n{}\n</think>\n{}"


def call(name, completions, prompts=None, **kw):
    options = kw.pop("options", {})
    fn = get_reward(name, **options)
    return fn(prompts if prompts is not None else [""] * len(completions), completions, **kw)


# --- registry ---------------------------------------------------------------------------------------


def test_registry_names_and_signature():
    for name in ("accuracy", "format", "language", "reasoning_steps", "length", "cosine", "repetition", "overlong", "code"):
        assert name in REWARDS
    fn = get_reward("format")
    assert fn.__name__ == "format" and fn.required_columns == ()
    assert get_reward("length").required_columns == ("answer",)


def test_resolve_rewards_weights_and_errors():
    rs = resolve_rewards({"accuracy": 1, "format": 0.5}, prefilled_think=False, template="r1")
    assert [(n, w) for n, _, w in rs] == [("accuracy", 1.0), ("format", 0.5)]
    with pytest.raises(UserError, match="unknown reward 'acuracy'.*'accuracy'"):
        resolve_rewards({"acuracy": 1.0})
    with pytest.raises(UserError, match="weight"):
        resolve_rewards({"format": "high"})
    with pytest.raises(UserError, match="weight"):
        resolve_rewards({"format": float("nan")})
    with pytest.raises(UserError, match="at least one"):
        resolve_rewards({})
    with pytest.raises(UserError, match="unknown reward option 'max_completion_lenn'.*'max_completion_len'"):
        resolve_rewards({"overlong": 1.0}, max_completion_lenn=10)
    with pytest.raises(UserError, match="max_completion_len"):
        resolve_rewards({"overlong": 1.0})
    with pytest.raises(UserError, match="template"):
        resolve_rewards({"format": 1.0}, template="chatml")
    assert {"template", "prefilled_think", "workers", "timeout", "max_completion_len"} <= known_options()


def test_dotted_path_user_reward(tmp_path, monkeypatch):
    (tmp_path / "myrewards.py").write_text(textwrap.dedent("""
        def short(prompts, completions, **kw):
            return [1.0 if len(c) < 10 else 0.0 for c in completions]
        short.required_columns = ("answer",)
        NOT_A_FUNCTION = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("myrewards", None)
    (name, fn, w), = resolve_rewards({"myrewards:short": 2.0}, prefilled_think=True)
    assert (name, w, fn.__name__, fn.required_columns) == ("short", 2.0, "short", ("answer",))
    assert fn(["", ""], ["ok", "a long completion"]) == [1.0, 0.0]
    for bad, msg in [("myrewards:missing", "has no 'missing'"), ("myrewards:NOT_A_FUNCTION", "not a function"),
                     ("no_such_module_x:fn", "cannot import"), ("bad path:fn", "not a valid dotted path")]:
        with pytest.raises(UserError, match=msg):
            resolve_rewards({bad: 1.0})


# --- format ----------------------------------------------------------------------------------------------


def test_format_r1_and_r1zero_and_prefilled():
    good, no_summary = R1.format("reason", "\\boxed{3}"), R1.format("reason", "")
    twice = R1.format("a", "b") + "\n</think>\nc"
    assert call("format", [good, no_summary, "just text", twice, ""]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    z = ["<think> r </think> <answer> 3 </answer>", "<think> r </think> 3", "<think> r </think> <answer> 3 </answer> more"]
    assert call("format", z, options={"template": "r1zero"}) == [1.0, 0.0, 0.0]
    # the chat template pre-filled "<think>\n": the completion has no opening tag (the trap
    # that makes other toolkits' format reward always 0)
    pre = ["reason\n</think>\n\\boxed{3}", "<think>\nreason\n</think>\n\\boxed{3}", "no close tag"]
    assert call("format", pre, options={"prefilled_think": True}) == [1.0, 1.0, 0.0]
    assert call("format", pre[:1]) == [0.0]
    msgs = [[{"role": "assistant", "content": good}]]
    assert call("format", msgs) == [1.0]


# --- language consistency -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,target,want", [
    ("首先计算 3+4=7，然后乘以 2 得 14。", "zh", 1.0),
    ("设 x = 3，则 x^2 = 9", "zh", 1.0),                      # single letters are variables: neutral
    ("计算 $\\frac{a}{b}$ 和 \\sqrt{2} 的值", "zh", 1.0),          # LaTeX is neutral
    ("先运行 `print(sum)` 代码", "zh", 1.0),                    # code is neutral
    ("计算 sin(x) 的值", "zh", 1.0),                            # math names are neutral
    ("First add 3 and 4 to get 7.", "en", 1.0),
    ("First add 3 and 4 to get 7.", "zh", 0.0),
    ("首先 add 3 and 4 得到 7", "zh", 4 / 6),                    # 4 Han characters, 2 English words
    ("首先 add 3 and 4 得到 7", "en", 2 / 6),
    ("3 + 4 = 7", "en", 1.0),                                    # nothing countable: nothing inconsistent
    ("Привет мир", "ru", 1.0),
    ("これは日本語です", "ja", 1.0),
    ("Ｆｉｒｓｔ add", "en", 1.0),                                # full-width Latin is Latin
])
def test_language_consistency(text, target, want):
    assert language_consistency(text, target) == pytest.approx(want)


def test_language_consistency_unknown_language():
    with pytest.raises(ValueError):
        language_consistency("x", "klingon")
    assert language_consistency("Hello there", "EN-us") == 1.0


def test_detect_language():
    assert detect_language("小明有 3 个苹果") == "zh"
    assert detect_language("Tom has 3 apples") == "en"
    assert detect_language("これは漢字が多い日本語の文です") == "ja"
    assert detect_language("1+1=?") is None


def test_language_reward_rows():
    comps = [R1.format("首先计算 3+4=7", "\\boxed{7}"), R1.format("First compute 3+4=7", "\\boxed{7}"),
             "no think block at all", R1.format("First compute", "x"), R1.format("3+4=7", "x")]
    prompts = ["小明有几个苹果？", "How many?", "How many?", [{"role": "user", "content": "小明有几个？"}], "1+1=?"]
    # target from the column when given, else detected from the prompt
    out = call("language", comps, prompts, language=["zh", "en", "en", None, None])
    assert out == [1.0, 1.0, 0.0, 0.0, None]  # no CoT -> 0; prompt with no words and no column -> None
    assert call("language", comps[:1], ["x"], language=["klingon"]) == [None]
    # chat template pre-filled "<think>\n": the CoT is everything before </think>
    pre = ["首先计算 3+4=7\n</think>\n\\boxed{7}"]
    assert call("language", pre, language=["zh"], options={"prefilled_think": True}) == [1.0]
    assert call("language", pre, language=["zh"]) == [0.0]


# --- reasoning steps, length, cosine, repetition, overlong --------------------------------------------------------


def test_reasoning_steps():
    comps = [R1.format("Step 1: add.\nStep 2: multiply.\nStep 3: check.", "x"), R1.format("First, add. Next, multiply.", "x"),
             R1.format("首先相加，然后相乘，最后检查。", "x"), "no steps here", ""]
    assert call("reasoning_steps", comps) == pytest.approx([1.0, 2 / 3, 1.0, 0.0, 0.0])


def test_length_reward_kimi_groups():
    short_ok, long_ok = R1.format("a", "\\boxed{7}"), R1.format("a" * 50, "\\boxed{7}")
    short_bad, long_bad = R1.format("b", "\\boxed{8}"), R1.format("b" * 50, "\\boxed{8}")
    comps = [short_ok, long_ok, short_bad, long_bad, short_ok, short_ok]
    prompts = ["p1"] * 4 + ["p2", "p3"]
    out = call("length", comps, prompts, answer=["7"] * 5 + [""], domain=["math"] * 6)
    assert out[0] == pytest.approx(0.5) and out[1] == pytest.approx(-0.5)   # correct: lambda
    assert out[2] == pytest.approx(0.0) and out[3] == pytest.approx(-0.5)   # wrong: min(0, lambda)
    assert out[4] == 0.0 and out[5] is None                                   # one-length group; no reference
    ids = [[0] * 10, [0] * 30, [0] * 20, [0] * 20]  # token counts win over characters when TRL gives them
    out = call("length", comps[:4], prompts[:4], answer=["7"] * 4, completion_ids=ids)
    assert out[0] == pytest.approx(0.5) and out[1] == pytest.approx(-0.5) and out[2] == pytest.approx(0.0)


def test_cosine_scaled():
    ok, bad = R1.format("a", "\\boxed{7}"), R1.format("a", "\\boxed{8}")
    ids = [[0] * 0, [0] * 1000, [0] * 5000, [0] * 0, [0] * 1000, [0] * 500]
    out = call("cosine", [ok, ok, ok, bad, bad, ok], answer=["7"] * 6, completion_ids=ids, options={"max_len": 1000})
    assert out == pytest.approx([1.0, 0.5, 0.5, -1.0, -0.5, 0.75])
    assert call("cosine", [ok], answer=["7"], domain=["general"]) == [None]


def test_repetition_english_and_chinese():
    out = call("repetition", ["the cat sat on the mat", "go go go go go go go go", "我们我们我们我们我们我们", "我们今天去公园玩", "", "hi"])
    assert out[0] == 0.0 and out[3] == 0.0 and out[4] == 0.0 and out[5] == 0.0
    assert out[1] == pytest.approx(-(1 - 1 / 6))
    assert out[2] == pytest.approx(-(1 - 2 / 10))  # CJK character n-grams: 12 chars, 10 trigrams, 2 distinct
    assert call("repetition", ["go go go go"], options={"ngram_size": 2, "max_penalty": -0.5}) == [pytest.approx(-0.5 * (1 - 1 / 3))]
    with pytest.raises(UserError, match="max_penalty"):
        get_reward("repetition", max_penalty=1.0)


def test_overlong_dapo():
    ids = [[0] * n for n in (10, 80, 90, 100, 101)]
    out = call("overlong", [""] * 5, completion_ids=ids, options={"max_completion_len": 100, "soft_punish_cache": 20})
    assert out == pytest.approx([0.0, 0.0, -0.5, -1.0, -1.0])
    # without token ids: a num_tokens column (r1 eval writes it), else characters
    assert call("overlong", ["x"], num_tokens=[90], options={"max_completion_len": 100, "soft_punish_cache": 20}) == [-0.5]
    assert call("overlong", ["x" * 90], options={"max_completion_len": 100, "soft_punish_cache": 20}) == [-0.5]
    with pytest.raises(UserError, match="soft_punish_cache"):
        get_reward("overlong", max_completion_len=10, soft_punish_cache=20)
