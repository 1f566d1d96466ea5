"""The shared evaluation (metrics on hand-made samples) and `r1 eval` end to end."""

from __future__ import annotations

import json

import pytest
import torch

from r1cli.config import SamplingConfig
from r1cli.errors import UserError
from r1cli.evaluation import evaluate, majority, score, summarize
from r1cli.generation import Completion
from r1cli.templates import extract_answer, is_r1_format, reasoning_text

torch.set_num_threads(1)

# --- a scripted generator and hand-made samples ------------------------------------------------------


class FakeTokenizer:
    chat_template = None


class FakeGenerator:
    """Returns the scripted completions of each prompt (keyed by the user's words)."""

    tokenizer = FakeTokenizer()

    def __init__(self, script: dict[str, list[str]]):
        self.script = script
        self.calls = []

    def generate(self, prompts, sampling, n=1, seed=0, progress=None):
        self.calls.append((prompts, sampling, n))
        out = []
        for p in prompts:
            key = p if isinstance(p, str) else p[-1]["content"]
            texts = self.script[key][:n]
            out.append([Completion(t, list(range(len(t))), len(t), "stop" if i % 2 == 0 else "length")
                        for i, t in enumerate(texts)])
        return out


def chat(q):
    return [{"role": "user", "content": q}]


ROWS = [
    {"id": "m-en", "prompt": chat("What is 3+4?"), "answer": "7", "domain": "math", "language": "en"},
    {"id": "m-zh", "prompt": chat("三乘四是多少？"), "answer": "12", "domain": "math", "language": "zh"},
    {"id": "g-en", "prompt": chat("Say hello."), "answer": "", "domain": "general", "language": "en"},
]
SCRIPT = {
    # pass@1 = 2/4; answers 7,8,7,8 tie -> the first seen (7) wins -> cons 1
    "What is 3+4?": ["<think>\nthree plus four is seven\n</think>\nIt is \\boxed{7}.",
                     "<think>\nthree plus four is eight\n</think>\n\\boxed{8}",
                     "\\boxed{7}",
                     "<think>\nmaybe eight\n</think>\n\\boxed{8}"],
    # pass@1 = 1/4; majority 5 (3 votes) is wrong -> cons 0
    "三乘四是多少？": ["<think>\n三乘四等于十二\n</think>\n\\boxed{12}",
                "<think>\nthree times four\n</think>\n\\boxed{5}",
                "<think>\n三乘四\n</think>\n\\boxed{5}",
                "<think>\n三乘四\n</think>\n\\boxed{5}"],
    # general: accuracy does not apply; still counts for format, language and tokens
    "Say hello.": ["<think>\nthe user greets\n</think>\nHello!", "Hello!", "<think>\nhi\n</think>\nHi.", "Hey"],
}


def stub_rewards():
    """Rewards with the registry's signature and obvious semantics, to test the metrics alone."""

    def accuracy(prompts, completions, answer, domain, **_):
        return [None if d == "general" else float(extract_answer(c) == a) for c, a, d in zip(completions, answer, domain)]

    def format_(prompts, completions, **_):
        return [float(is_r1_format(c)) for c in completions]

    def language(prompts, completions, language, **_):
        def share(text, lang):
            cot = reasoning_text(text)
            letters = [ch for ch in cot if not ch.isspace()]
            zh = sum("\u4e00" <= ch <= "\u9fff" for ch in letters)
            return (zh if lang == "zh" else len(letters) - zh) / max(len(letters), 1)

        return [share(c, lang) for c, lang in zip(completions, language)]

    return {"accuracy": accuracy, "format": format_, "language": language}


@pytest.fixture(params=["stub", "registry"])
def scored(request, monkeypatch):
    """The hand-made samples scored by stub rewards (the metrics alone) and by the real registry
    (math-verify, the language reward), which must agree on these clear-cut cases."""
    import r1cli.evaluation as ev

    if request.param == "stub":
        monkeypatch.setattr(ev, "reward_functions", lambda template, prefilled: stub_rewards())
    gen = FakeGenerator(SCRIPT)
    from datasets import Dataset

    rows, metrics = evaluate(gen, Dataset.from_list(ROWS), k=4, sampling=SamplingConfig(max_new_tokens=64),
                             progress=False)
    return gen, rows, metrics


# --- metrics -------------------------------------------------------------------------------------------


def test_pass_at_1_is_averaged_over_k_samples(scored):
    _, _, m = scored
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["by_domain"]["math"]["pass@1"] == pytest.approx(0.375)
    assert m["by_domain"]["general"]["pass@1"] is None  # accuracy does not apply there
    assert m["n_prompts"] == 3 and m["n_scored_prompts"] == 2 and m["n_samples"] == 12 and m["k"] == 4


def test_cons_at_k_is_majority_vote_ties_to_first_seen(scored):
    _, _, m = scored
    assert m["by_language"]["en"]["cons@k"] == 1.0  # 7 vs 8 tie, 7 first
    assert m["by_language"]["zh"]["cons@k"] == 0.0  # 5 x3 beats 12
    assert m["cons@k"] == 0.5
    assert majority(["8", None, " 7", "7", "8"]) == "8"
    assert majority(["1/2", "7,425,000", "$7425000$", "\\dfrac{1}{2}", "\\frac{1}{2}"]) == "7425000"
    assert majority([None, None]) is None


def test_pass_at_j_is_the_unbiased_estimator_and_maj_at_j_votes_the_first_j(scored):
    _, _, m = scored
    # en: 2 of 4 right (answers 7 8 7 8); zh: 1 of 4 (12 5 5 5). pass@j = 1 - C(4-c, j) / C(4, j)
    assert m["pass@2"] == pytest.approx((1 - 1 / 6 + 1 - 3 / 6) / 2)
    assert m["pass@3"] == pytest.approx((1 + 1 - 1 / 4) / 2) and m["pass@4"] == 1.0
    assert m["by_language"]["zh"]["pass@3"] == pytest.approx(0.75)
    # maj@j: first j samples; en 7 | 7,8 tie -> 7 | 7 | 7 ; zh 12 | 12,5 tie -> 12 | 5 | 5
    assert [m[f"maj@{j}"] for j in range(1, 5)] == [1.0, 1.0, 0.5, 0.5]
    assert m["maj@4"] == m["cons@k"]  # cons@k is maj@k over all k samples
    assert "pass@5" not in m and "maj@5" not in m and m["by_domain"]["general"]["maj@1"] is None


def test_format_and_language_rates(scored):
    _, rows, m = scored
    # R1 format: en 3 of 4, zh 4 of 4, general 2 of 4
    assert m["format_rate"] == pytest.approx(9 / 12)
    assert m["by_domain"]["general"]["format_rate"] == 0.5
    # zh: sample 2's CoT is English -> 3 of 4; en math: the no-CoT sample is inconsistent -> 3 of 4;
    # general: 2 of 4 have a CoT
    assert m["by_language"]["zh"]["language_consistency_rate"] == pytest.approx(3 / 4)
    assert m["by_domain"]["math"]["language_consistency_rate"] == pytest.approx(6 / 8)
    assert m["language_consistency_rate"] == pytest.approx(8 / 12)
    no_cot = next(r for r in rows if r["id"] == "m-en" and r["sample_index"] == 2)
    assert no_cot["language_consistent"] is False


def test_tokens_and_truncation(scored):
    _, rows, m = scored
    assert m["mean_completion_tokens"] == pytest.approx(sum(r["num_tokens"] for r in rows) / 12, abs=1e-5)
    assert m["truncated_rate"] == 0.5  # the fake marks odd samples as "length"


def test_rows_carry_the_input_columns_and_each_reward(scored):
    gen, rows, _ = scored
    assert [(r["id"], r["sample_index"]) for r in rows[:5]] == [("m-en", 0), ("m-en", 1), ("m-en", 2), ("m-en", 3), ("m-zh", 0)]
    r = rows[1]
    assert r["prompt"] == ROWS[0]["prompt"] and r["answer"] == "7" and r["domain"] == "math"
    assert r["extracted_answer"] == "8" and r["reward_accuracy"] == 0.0 and r["reward_format"] == 1.0
    assert r["finish_reason"] == "length" and r["num_tokens"] == len(r["completion"])
    general = [x for x in rows if x["domain"] == "general"]
    assert general and all(x["reward_accuracy"] is None for x in general)
    # k samples per prompt were asked for with the paper's eval sampling
    _, sampling, n = gen.calls[0]
    assert n == 4 and sampling.temperature == 0.6 and sampling.top_p == 0.95


def test_r1zero_template_sends_plain_text_prompts(monkeypatch):
    from datasets import Dataset

    import r1cli.evaluation as ev

    monkeypatch.setattr(ev, "reward_functions", lambda template, prefilled: stub_rewards())
    q = ROWS[0]["prompt"][0]["content"]
    prompt = ev.R1ZERO_TEMPLATE.format(prompt=q)
    gen = FakeGenerator({prompt: ["<think> 3+4=7 </think> <answer> 7 </answer>"] * 2})
    rows, m = evaluate(gen, Dataset.from_list(ROWS[:1]), k=2, template="r1zero", progress=False)
    assert gen.calls[0][0] == [prompt]
    assert rows[0]["extracted_answer"] == "7" and m["pass@1"] == 1.0


def test_summarize_groups_without_domain_or_language_as_unknown():
    comps = [[Completion("\\boxed{1}", [1], 1, "stop")]]
    rows = score([{"prompt": "1?", "answer": "1"}], comps, {"accuracy": lambda p, c, answer, **_: [1.0] * len(c)},
                 prefilled_think=False, threshold=0.95)
    m = summarize(rows, k=1)
    assert m["pass@1"] == 1.0 and list(m["by_domain"]) == ["unknown"] and list(m["by_language"]) == ["unknown"]


def test_bad_arguments_are_user_errors():
    from datasets import Dataset

    ds = Dataset.from_list(ROWS)
    gen = FakeGenerator(SCRIPT)
    with pytest.raises(UserError, match="template"):
        evaluate(gen, ds, template="chatml")
    with pytest.raises(UserError, match="k must be"):
        evaluate(gen, ds, k=0)
    with pytest.raises(UserError, match="empty"):
        evaluate(gen, ds.select([]))
    assert gen.calls == []


# --- `r1 eval` end to end --------------------------------------------------------------------------------


def r1(*args) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    import contextlib
    import io

    from r1cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code or 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """A tiny random checkpoint and a JSONL eval set (the toy fixtures test a trained model)."""
    from tiny_lm import save_tiny

    d = tmp_path_factory.mktemp("tiny")
    model = save_tiny(d / "model")
    data = d / "eval.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS))
    return model, data


def test_r1_eval_writes_an_eval_dir(tiny_world, tmp_path):
    from datasets import load_from_disk

    from r1cli.artifacts import read_manifest

    model, data = tiny_world
    out = tmp_path / "ev"
    code, stdout, err = r1("eval", "--model", model, "--data", data, "--out", out, "--k", 2, "--max-new-tokens", 8)
    assert code == 0, err
    m = read_manifest(out)
    assert m["kind"] == "eval" and m["stage"] == "eval" and m["status"] == "finished"
    for key in ("pass@1", "cons@k", "format_rate", "language_consistency_rate", "mean_completion_tokens",
                "by_domain", "by_language"):
        assert key in m["metrics"]
    assert m["metrics"]["n_prompts"] == 3 and m["counts"]["samples"] == 6
    assert {"pass@2", "maj@1", "maj@2"} <= set(m["metrics"]) and m["metrics"]["maj@2"] == m["metrics"]["cons@k"]
    assert m["config"]["k"] == 2 and m["config"]["sampling"]["max_new_tokens"] == 8
    assert set(m["metrics"]["by_domain"]) == {"math", "general"} and set(m["metrics"]["by_language"]) == {"en", "zh"}
    rows = load_from_disk(str(out))
    assert len(rows) == 6 and {"id", "prompt", "answer", "completion", "reward_accuracy", "num_tokens"} <= set(rows.column_names)
    assert "pass@1" in stdout and "maj@j" in stdout  # the rich tables


def test_r1_eval_limit_and_recipe(tiny_world, tmp_path):
    from r1cli.artifacts import read_manifest

    model, data = tiny_world
    recipe = tmp_path / "eval.yaml"
    recipe.write_text("stage: eval\nk: 1\nsampling:\n  temperature: 0\n  max_new_tokens: 4\n")
    out = tmp_path / "ev"
    code, _, err = r1("eval", "--model", model, "--data", data, "--out", out, "--recipe", recipe, "--limit", 2)
    assert code == 0, err
    m = read_manifest(out)
    assert m["metrics"]["n_prompts"] == 2 and m["metrics"]["k"] == 1 and m["config"]["sampling"]["temperature"] == 0


@pytest.mark.parametrize("case", ["no_model", "no_weights", "data_as_model", "no_data", "bad_column", "template",
                                  "k", "top_p", "vllm", "out_exists"])
def test_r1_eval_bad_inputs_exit_2_without_output(case, tiny_world, tmp_path):
    import importlib.util

    model, data = tiny_world
    out = tmp_path / "ev"
    args = {"--model": model, "--data": data, "--out": out}
    extra = []
    if case == "no_model":
        args["--model"] = tmp_path / "nope"
    elif case == "no_weights":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text((model / "config.json").read_text())
        args["--model"] = tmp_path / "empty"
    elif case == "data_as_model":
        args["--model"] = data
    elif case == "no_data":
        args["--data"] = tmp_path / "missing.jsonl"
    elif case == "bad_column":
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
        args["--data"] = bad
    elif case == "template":
        extra = ["--template", "chatml"]
    elif case == "k":
        extra = ["--k", "0"]
    elif case == "top_p":
        extra = ["--top-p", "1.5"]
    elif case == "vllm":
        if importlib.util.find_spec("vllm") is not None:
            pytest.skip("vllm is installed")
        extra = ["--backend", "vllm"]
    elif case == "out_exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    code, _, err = r1("eval", *[x for kv in args.items() for x in kv], *extra)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    if case == "out_exists":
        assert (out / "keep.txt").read_text() == "mine"
    else:
        assert not out.exists()
    assert not (tmp_path / "ev.partial").exists()


def test_r1_eval_on_the_toy_world(toy_base, toy_data, tmp_path):
    """The toy base model's numbers, through the CLI with the toy recipes (chat and r1zero)."""
    from pathlib import Path

    from datasets import load_from_disk

    from r1cli.artifacts import read_manifest

    recipes = Path(__file__).resolve().parents[1] / "recipes" / "toy"
    for name in ("eval", "eval_r1zero"):
        out = tmp_path / name
        code, stdout, err = r1("eval", "--model", toy_base, "--data", Path(toy_data) / "eval", "--out", out,
                               "--recipe", recipes / f"{name}.yaml", "--limit", 24, "--k", 2)
        assert code == 0, err
        m = read_manifest(out)["metrics"]
        assert m["n_prompts"] == 24 and m["n_samples"] == 48 and set(m["by_language"]) == {"en", "zh"}
        rows = load_from_disk(str(out))
        assert len(rows) == 48 and set(rows["finish_reason"]) <= {"stop", "length"}
        assert all(0 < n <= 128 for n in rows["num_tokens"])
        # the 30-step base writes characters, not answers: no completion holds a box or an <answer> tag, so
        # none has an extracted answer and none is right (extraction from real answers, literal values:
        # test_rows_carry_the_input_columns_and_each_reward, test_r1zero_template_sends_plain_text_prompts)
        assert not any("\\boxed" in c or "<answer>" in c for c in rows["completion"])
        assert rows["extracted_answer"] == [None] * 48 and rows["reward_accuracy"] == [0.0] * 48
        assert m["pass@1"] == 0.0 and m["cons@k"] == 0.0
        # the manifest's rates are the means of the rows' own columns (None: does not apply, not counted)
        def mean(xs):
            xs = [float(x) for x in xs if x is not None]
            return sum(xs) / len(xs)

        assert m["format_rate"] == pytest.approx(mean(rows["reward_format"]), abs=1e-6)
        assert m["language_consistency_rate"] == pytest.approx(mean(rows["language_consistent"]), abs=1e-6)
        assert m["mean_completion_tokens"] == pytest.approx(mean(rows["num_tokens"]), abs=1e-4)


# --- prompts that fill the context, the system prompt --------------------------------------------------


def test_system_prompt_goes_before_each_chat_prompt():
    from datasets import Dataset

    gen = FakeGenerator(SCRIPT)
    evaluate(gen, Dataset.from_list(ROWS), k=1, system_prompt="Think step by step.", progress=False)
    prompts = gen.calls[0][0]
    assert all(p[0] == {"role": "system", "content": "Think step by step."} and p[1]["role"] == "user" for p in prompts)


@pytest.fixture
def long_data(tmp_path):
    """The eval rows plus one prompt longer than the tiny model's 512-token context."""
    data = tmp_path / "long.jsonl"
    rows = ROWS + [{"id": "huge", "prompt": chat("What is " + "1+" * 400 + "1?"), "answer": "401", "domain": "math",
                    "language": "en"}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return data


def test_r1_eval_refuses_prompts_that_leave_no_room(tiny_world, long_data, tmp_path):
    model, _ = tiny_world
    out = tmp_path / "ev"
    code, _, err = r1("eval", "--model", model, "--data", long_data, "--out", out, "--k", 1, "--max-new-tokens", 8)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "1 of 4 prompts" in err and "ids huge" in err and "drop_long_prompts=true" in err and "r1 data filter" in err
    assert not out.exists() and not (tmp_path / "ev.partial").exists()


def test_r1_eval_drop_long_prompts_leaves_them_out_and_counts_them(tiny_world, long_data, tmp_path):
    from r1cli.artifacts import read_manifest

    model, _ = tiny_world
    out = tmp_path / "ev"
    code, _, err = r1("eval", "--model", model, "--data", long_data, "--out", out, "--k", 1, "--max-new-tokens", 8,
                      "--set", "drop_long_prompts=true")
    assert code == 0, err
    m = read_manifest(out)
    assert m["counts"]["dropped_long_prompts"] == 1 and m["metrics"]["n_prompts"] == 3


def test_r1_eval_says_why_pass_at_1_is_missing(tiny_world, tmp_path):
    model, _ = tiny_world
    data = tmp_path / "no_answer.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "prompt": r["prompt"]}, ensure_ascii=False) + "\n" for r in ROWS))
    code, stdout, err = r1("eval", "--model", model, "--data", data, "--out", tmp_path / "ev", "--k", 1,
                           "--max-new-tokens", 4)
    assert code == 0, err
    assert "pass@1 and cons@k are -:" in stdout and "has no `answer` column" in stdout
