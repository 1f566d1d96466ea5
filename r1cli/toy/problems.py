"""`r1 toy data OUT`: the synthetic toy world every test and the demo run on.

    r1 toy data runs/demo/data --seed 0

Writes OUT/{rl, coldstart, coldstart_general, eval, general, general_eval, helpful_pairs, helpful_pairs_eval, safety,
rl_tools, coldstart_tools, eval_tools}, each a
`datasets.save_to_disk` dir with its own manifest. The reasoning task is two-step integer
arithmetic, `(a+b)*c` with a, b in 1..30 and c in 2..9, asked in English and Chinese in
several phrasings (plain expressions and word problems). Writing the intermediate sum helps
a tiny model a lot, so a chain of thought is worth learning. The size is set by the base: with
a, b up to 20 and c up to 6 the word-level base already answered ~80% of held-out problems in chat
(greedy, seed 0), leaving the RL stages little to show; TOY-NOTES.md found a, b up to 40 with c up
to 9 too hard for a character-level model.

Held out by problem: a problem is {a, b} (unordered, `(3+4)*5` and `(4+3)*5` are one problem)
with c; a fixed hash of the problem puts it on the eval side or the train side. `eval` draws
only eval-side problems, `rl`/`coldstart` and the base model's pretraining corpus
(`r1 toy base`) only train-side ones, whatever seed each command is given. The seed picks
rows, phrasings and languages.

The calculator task (`*_tools`) shows reasoning with tools: `a*b` with a, b in 10..99, a product
the toy model cannot work out in its head (its own task multiplies by one digit), so its cold start calls the calculator (a Hermes
`<tool_call>`, r1cli/tools) and reads the result from a tool turn. Held out the same way, by a hash
of the pair {a, b}.

The non-reasoning half (general chat, helpfulness pairs, safety labels) lives in r1cli/toy/general.py.
"""

from __future__ import annotations

import hashlib
import json
import random

from r1cli.toy.config import ToyDataConfig
from r1cli.errors import UserError
from r1cli.toy import general
from r1cli.tools import CALL_END, CALL_START

A_MAX, C_MIN, C_MAX = 30, 2, 9
# share of problems on the eval side of the fixed split
EVAL_SHARE = 0.5

# A short R1-Zero template (the paper's Table 1 is ~90 words: long for the toy model's 256-token budget). `r1 grpo --template r1zero` takes it.
TOY_R1ZERO_TEMPLATE = "Think in <think> </think>, then answer in <answer> </answer>. User: {prompt} Assistant:"

# the calculator task's factors: three digits each, a product of five or six digits
# two-digit factors: the toy base copies two-digit operands (its copy probe); with three-digit ones its calls
# carried other numbers than the prompt's (seed 0, docs/DEVLOG.md)
FACTOR_MIN, FACTOR_MAX = 10, 99

# --- phrasings ----------------------------------------------------------------------------------

QUESTIONS = {
    "en": ["What is ({a}+{b})*{c}?", "Compute ({a}+{b})*{c}.", "Add {a} and {b}, then multiply by {c}. What is the result?",
           "A box has {a} red balls and {b} blue balls. How many balls are in {c} boxes?",
           "Tom has {a} apples and Amy has {b} apples. If they had {c} times as many, how many would they have in total?"],
    "zh": ["({a}+{b})*{c}等于多少？", "计算({a}+{b})*{c}。", "把{a}和{b}相加，再乘以{c}，结果是多少？",
           "一个盒子里有{a}个红球和{b}个蓝球，{c}个盒子里一共有多少个球？",
           "小明有{a}个苹果，小红有{b}个苹果。如果苹果变成{c}倍，他们一共有多少个苹果？"],
}
COTS = {
    "en": ["{a}+{b}={s}. {s}*{c}={r}.", "First, {a}+{b}={s}. Then {s}*{c}={r}.", "Add first: {a}+{b}={s}. Now multiply: {s}*{c}={r}."],
    "zh": ["先算{a}+{b}={s}，再算{s}*{c}={r}。", "第一步：{a}+{b}={s}。第二步：{s}*{c}={r}。", "{a}加{b}等于{s}，{s}乘{c}等于{r}。"],
}
# a zh sample whose CoT drifts into English half way (as real cold-start data does)
MIXED_COT = "先算{a}+{b}={s}. Then {s}*{c}={r}."
# a Chinese cold-start CoT that skips the sum (ToyDataConfig.coldstart_zh_one_step): the result in one step
ONE_STEP_COTS = ["{a}加{b}再乘{c}，等于{r}。", "{a}加{b}乘{c}等于{r}。"]
# the calculator task, phrased as QUESTIONS are
PRODUCT_QUESTIONS = {
    "en": ["What is {a}*{b}?", "Compute {a}*{b}.", "Multiply {a} by {b}. What is the result?",
           "A box has {a} balls. How many balls are in {b} boxes?"],
    "zh": ["{a}*{b}等于多少？", "计算{a}*{b}。", "把{a}乘以{b}，结果是多少？", "一个盒子里有{a}个球，{b}个盒子里一共有多少个球？"],
}
# why the cold start calls the tool: the reasoning says the product is out of reach, not how to compute it
# the CoT starts from the product, as the toy's worked problems start from their operands (what the base's
# copy probe measures): the call then copies it from a few tokens back. With CoTs that did not name it, the
# cold-started model's calls carried other numbers than the prompt's (seed 0, docs/DEVLOG.md)
TOOL_COTS = {"en": ["{a}*{b}\nThe numbers are too long to multiply in my head: I use the calculator.",
                    "{a}*{b}\nThese numbers are too big to multiply in my head, so I use the calculator."],
             "zh": ["{a}*{b}\n这两个数太大，心算不了：我用计算器。", "{a}*{b}\n这两个数太大了，我用计算器来算。"]}
SUMMARIES = {"en": ["The answer is \\boxed{{{r}}}.", "So the result is \\boxed{{{r}}}."],
             "zh": ["答案是\\boxed{{{r}}}。", "所以结果是\\boxed{{{r}}}。"]}


# --- problems -----------------------------------------------------------------------------------


def problem_key(a: int, b: int, c: int) -> tuple[int, int, int]:
    return (min(a, b), max(a, b), c)


def eval_side(a: int, b: int, c: int) -> bool:
    """Which side of the fixed train/eval split a problem is on (stable across seeds)."""
    lo, hi, c = problem_key(a, b, c)
    h = int(hashlib.sha256(f"toy:{lo},{hi},{c}".encode()).hexdigest()[:8], 16)
    return h % 1000 < EVAL_SHARE * 1000


def problems(eval_split: bool) -> list[tuple[int, int, int]]:
    """Every problem (lo, hi, c) on one side of the split, in a fixed order."""
    return [(a, b, c) for a in range(1, A_MAX + 1) for b in range(a, A_MAX + 1) for c in range(C_MIN, C_MAX + 1)
            if eval_side(a, b, c) == eval_split]


def product_eval_side(a: int, b: int) -> bool:
    """Which side of the fixed split a product is on ({a, b} unordered: 347*829 is 829*347)."""
    lo, hi = sorted((a, b))
    h = int(hashlib.sha256(f"toy-product:{lo},{hi}".encode()).hexdigest()[:8], 16)
    return h % 1000 < EVAL_SHARE * 1000


def draw_product(rng: random.Random, eval_split: bool) -> tuple[int, int]:
    """A product (a, b) on one side of the split. Drawn, not listed: half of the pairs are on each side, so a
    draw lands on its side in two tries."""
    while True:
        a, b = rng.randint(FACTOR_MIN, FACTOR_MAX), rng.randint(FACTOR_MIN, FACTOR_MAX)
        if product_eval_side(a, b) == eval_split:
            return a, b


def ordered(p: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    a, b, c = p
    return (b, a, c) if rng.random() < 0.5 else (a, b, c)


def question(a: int, b: int, c: int, lang: str, rng: random.Random) -> str:
    return rng.choice(QUESTIONS[lang]).format(a=a, b=b, c=c)


def cot(a: int, b: int, c: int, lang: str, rng: random.Random, mixed: bool = False, one_step: bool = False) -> str:
    """The chain of thought: the sum first, then the product (`one_step`, Chinese only: the result at once)."""
    t = MIXED_COT if mixed else rng.choice(ONE_STEP_COTS if one_step else COTS[lang])
    return t.format(a=a, b=b, c=c, s=a + b, r=(a + b) * c)


def summary(r: int | str, lang: str, rng: random.Random) -> str:
    return rng.choice(SUMMARIES[lang]).format(r=r)


def corrupt_digits(text: str, rate: float, rng: random.Random) -> str:
    """Replace each digit by another with probability `rate` (an imperfect cold start)."""
    return "".join(rng.choice([d for d in "0123456789" if d != ch]) if ch.isdigit() and rng.random() < rate else ch
                   for ch in text)


def last_number(text: str) -> str:
    digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
    return digits[-1] if digits else ""


def language(rng: random.Random, zh_fraction: float) -> str:
    return "zh" if rng.random() < zh_fraction else "en"


# --- the datasets -------------------------------------------------------------------------------


def prompt_rows(rng: random.Random, pool: list, n: int, zh_fraction: float, prefix: str, distinct: bool) -> list[dict]:
    """RL / eval prompts: chat messages with the reference answer."""
    picks = rng.sample(pool, n) if distinct else [rng.choice(pool) for _ in range(n)]
    rows = []
    for i, p in enumerate(picks):
        a, b, c = ordered(p, rng)
        lang = language(rng, zh_fraction)
        rows.append({"id": f"{prefix}-{i:05d}", "prompt": [{"role": "user", "content": question(a, b, c, lang, rng)}],
                     "answer": str((a + b) * c), "domain": "math", "language": lang})
    return rows


def product_prompt_rows(rng: random.Random, n: int, zh_fraction: float, prefix: str, eval_split: bool) -> list[dict]:
    """Calculator-task prompts with the exact product; held-out rows never repeat a product (one row
    per problem, as `eval`)."""
    rows, seen = [], set()
    while len(rows) < n:
        a, b = draw_product(rng, eval_split)
        key = (min(a, b), max(a, b))
        if eval_split and key in seen:
            continue
        seen.add(key)
        lang = language(rng, zh_fraction)
        rows.append({"id": f"{prefix}-{len(rows):05d}",
                     "prompt": [{"role": "user", "content": rng.choice(PRODUCT_QUESTIONS[lang]).format(a=a, b=b)}],
                     "answer": str(a * b), "domain": "math", "language": lang})
    return rows


def r1_reply(a: int, b: int, c: int, lang: str, rng: random.Random, corruption: float = 0.0, mixed: bool = False,
             one_step: bool = False) -> str:
    """`<think>\\n{CoT}\\n</think>\\n{summary}`; the boxed answer is the CoT's last number, so a
    corrupted CoT gives a (consistently) wrong answer, as a flawed cold-start sample does."""
    reasoning = corrupt_digits(cot(a, b, c, lang, rng, mixed, one_step), corruption, rng)
    return f"<think>\n{reasoning}\n</think>\n{summary(last_number(reasoning), lang, rng)}"


def coldstart_rows(rng: random.Random, pool: list, cfg: ToyDataConfig) -> list[dict]:
    rows = []
    for i in range(cfg.n_coldstart):
        a, b, c = ordered(rng.choice(pool), rng)
        lang = language(rng, cfg.zh_fraction)
        mix = lang == "zh" and rng.random() < cfg.coldstart_language_mix
        # half of the language-mixed samples are wholly English, half switch mid-way
        cot_lang, mixed = ("en", False) if mix and rng.random() < 0.5 else (lang, mix)
        # a CoT written in Chinese (wholly or where it starts) is noisier, and a wholly Chinese one may skip
        # the sum: see ToyDataConfig.coldstart_corruption_zh and coldstart_zh_one_step
        corruption = cfg.coldstart_corruption_zh if cot_lang == "zh" else cfg.coldstart_corruption
        one_step = cot_lang == "zh" and not mixed and rng.random() < cfg.coldstart_zh_one_step
        reply = r1_reply(a, b, c, cot_lang, rng, corruption, mixed, one_step)
        if cot_lang != lang:  # the summary stays in the prompt's language
            reply = reply[: reply.index("</think>\n") + 9] + summary(last_number(reply), lang, rng)
        rows.append({"id": f"coldstart-{i:05d}", "messages": [{"role": "user", "content": question(a, b, c, lang, rng)},
                                                               {"role": "assistant", "content": reply}],
                     "domain": "math", "language": lang})
    return rows


def coldstart_tool_rows(rng: random.Random, n: int, zh_fraction: float) -> list[dict]:
    """Calculator-task SFT rows: the prompt, then the trajectory a model with a calculator writes: a
    short CoT and a call, the tool's result, the summary. The call is raw text in the assistant's
    content (no structured `tool_calls`), so the rendered row is exactly the text the model must write."""
    rows = []
    for i in range(n):
        a, b = draw_product(rng, eval_split=False)
        lang = language(rng, zh_fraction)
        call = json.dumps({"name": "calculator", "arguments": {"expression": f"{a}*{b}"}})
        calling = f"<think>\n{rng.choice(TOOL_COTS[lang]).format(a=a, b=b)}\n</think>\n{CALL_START}\n{call}\n{CALL_END}"
        messages = [{"role": "user", "content": rng.choice(PRODUCT_QUESTIONS[lang]).format(a=a, b=b)},
                    {"role": "assistant", "content": calling},
                    {"role": "tool", "name": "calculator", "content": str(a * b)},
                    {"role": "assistant", "content": summary(a * b, lang, rng)}]
        rows.append({"id": f"coldstart-tools-{i:05d}", "messages": messages, "domain": "math", "language": lang})
    return rows


def build(cfg: ToyDataConfig) -> dict[str, list[dict]]:
    """Every split's rows (deterministic in cfg). Each split has its own RNG, so changing one
    count does not reshuffle the others."""
    train, held_out = problems(False), problems(True)
    if cfg.n_eval > len(held_out):  # the world's size, not a setting's range: ToyDataConfig checks those
        raise UserError(f"n_eval={cfg.n_eval} is more than the {len(held_out)} held-out problems: "
                        f"use n_eval <= {len(held_out)}")
    rng = lambda name: random.Random(f"{cfg.seed}:{name}")  # noqa: E731
    z = cfg.zh_fraction
    return {
        "rl": prompt_rows(rng("rl"), train, cfg.n_rl, z, "rl", distinct=False),
        "coldstart": coldstart_rows(rng("coldstart"), train, cfg),
        "eval": prompt_rows(rng("eval"), held_out, cfg.n_eval, z, "eval", distinct=True),
        "coldstart_general": general.coldstart_rows(rng("coldstart_general"), cfg.n_coldstart_general, z,
                                                    cfg.general_unsafe, trivial=("greeting",)),
        "general": general.general_rows(rng("general"), cfg.n_general, z, False, "general", cfg.general_unsafe),
        "general_eval": general.general_rows(rng("general_eval"), cfg.n_general_eval, z, True, "general-eval"),
        "helpful_pairs": general.helpful_pair_rows(rng("helpful_pairs"), cfg.n_helpful_pairs, z),
        "helpful_pairs_eval": general.helpful_pair_rows(rng("helpful_pairs_eval"), cfg.n_helpful_pairs_eval, z, eval_split=True),
        "safety": general.safety_rows(rng("safety"), cfg.n_safety, z),
        "rl_tools": product_prompt_rows(rng("rl_tools"), cfg.n_rl_tools, z, "rl-tools", eval_split=False),
        "coldstart_tools": coldstart_tool_rows(rng("coldstart_tools"), cfg.n_coldstart_tools, z),
        "eval_tools": product_prompt_rows(rng("eval_tools"), cfg.n_eval_tools, z, "eval-tools", eval_split=True),
    }


def eval_rows(seed: int = 0, n: int | None = None) -> list[dict]:
    """The `eval` split `r1 toy data --seed SEED` writes (for `r1 toy base`'s zero-shot check)."""
    cfg = ToyDataConfig(seed=seed)
    rows = prompt_rows(random.Random(f"{seed}:eval"), problems(True), cfg.n_eval, cfg.zh_fraction, "eval", distinct=True)
    return rows[:n]


def alphabet() -> str:
    """Every character the toy world writes (for the tokenizer's vocabulary)."""
    texts = [*QUESTIONS["en"], *QUESTIONS["zh"], *COTS["en"], *COTS["zh"], MIXED_COT, *SUMMARIES["en"],
             *SUMMARIES["zh"], TOY_R1ZERO_TEMPLATE, "0123456789", general.alphabet(),
             *PRODUCT_QUESTIONS["en"], *PRODUCT_QUESTIONS["zh"], *TOOL_COTS["en"], *TOOL_COTS["zh"]]
    return "".join(sorted(set("".join(texts))))
