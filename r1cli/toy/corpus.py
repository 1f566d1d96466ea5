"""The pretraining corpus of the toy base model (`r1 toy base`): what its "web" looks like.

A pretrained base knows arithmetic facts, has seen problems answered directly, much
step-by-step working ("Q: ... A: 3+4=7. 7*5=35."), a little R1-style text, the short r1zero
template answered in several ways, mixed-language reasoning, and chat both helpful and not, with
harmful requests sometimes refused and sometimes obeyed. That is what this corpus holds, so the
base starts where DeepSeek-V3-Base did relative to its tasks: in chat it mostly answers directly
(R1 format on about a quarter of samples, about 1 in 5 right), under the r1zero template it
often reasons and is right about a third of the time at T 0.6: something for R1-Zero's RL to
reinforce, and the pieces a cold start assembles in a few minutes.

Only train-side problems and prompts appear (problems.problems(False), general.py's train pool):
the eval sets stay held out whatever seeds `r1 toy data` and `r1 toy base` are given.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

from r1cli.toy import general
from r1cli.toy import problems as toy

END = "<|end|>"  # the document separator is the chat template's end-of-turn (the eos)

# share of documents of each kind. Measured on the base's copy probe (`r1 toy base`, greedy, held-out
# prompts, seed 0, 2.46M tokens): with copy drills at 8% of documents the base copied a problem's
# operands (99%) but no phrase (repeat 0-4%: stock phrases instead); at 30% it repeated 84% and still
# copied operands (100%); at 45% worked problems became too rare (zero-shot accuracy 13%). The glossary
# and more general chat teach what a translation or an opposite is (DEVLOG).
MIX = {
    "facts": 0.04,
    "worksheet": 0.06,
    "direct": 0.03,  # a problem answered without reasoning
    "plain_cot": 0.30,  # "Q: ... A: 3+4=7. 7*5=35. The answer is 35." (no tags)
    "r1_chat": 0.012,  # chat, assistant turn in the R1 format
    "r1zero": 0.045,  # the short r1zero template, answered in several ways
    "mixed_language": 0.013,  # a Chinese problem reasoned in English
    "general": 0.09,
    "general_r1": 0.04,  # general chat answered in the R1 format: a short CoT, then the reply
    "general_unhelpful": 0.015,
    "harmful": 0.03,
    "copy": 0.25,  # words and numbers said twice: the copying skill on its own (see copy_doc)
    "glossary": 0.06,  # translations, opposites, counting (see glossary)
}


def chat(user: str, assistant: str) -> str:
    """A one-turn chat exactly as the chat template renders it (toy_base.CHAT_TEMPLATE)."""
    return f"<|user|>{user}{END}<|assistant|>{assistant}{END}"


# --- documents ------------------------------------------------------------------------------------


def facts(rng: random.Random) -> str:
    """Lines of sums and products, in symbols and words, both languages."""
    out = []
    for _ in range(rng.randint(6, 16)):
        if rng.random() < 0.5:
            a, b = rng.randint(1, toy.A_MAX), rng.randint(1, toy.A_MAX)
            forms = ["{a}+{b}={r}", "{a} plus {b} is {r}", "{a}加{b}等于{r}"]
            r = a + b
        else:
            a, b = rng.randint(2, 2 * toy.A_MAX), rng.randint(toy.C_MIN, toy.C_MAX)
            if rng.random() < 0.2:
                a, b = b, a
            forms = ["{a}*{b}={r}", "{a} times {b} is {r}", "{a}乘{b}等于{r}"]
            r = a * b
        out.append(rng.choices(forms, [6, 1, 1])[0].format(a=a, b=b, r=r))
    return rng.choice(["\n", ", ", "; "]).join(out) + END


def _problem(rng: random.Random) -> tuple[int, int, int, str, str]:
    a, b, c = toy.ordered(rng.choice(_TRAIN), rng)
    lang = "zh" if rng.random() < 0.5 else "en"
    return a, b, c, lang, toy.question(a, b, c, lang, rng)


def direct(rng: random.Random) -> str:
    a, b, c, lang, q = _problem(rng)
    r = (a + b) * c
    answer = rng.choice([toy.summary(r, lang, rng), str(r), toy.summary(r, lang, rng)])
    return chat(q, answer)


def plain_cot(rng: random.Random) -> str:
    a, b, c, lang, q = _problem(rng)
    r = (a + b) * c
    if lang == "en":
        return f"Q: {q}\nA: {toy.cot(a, b, c, lang, rng)} The answer is {r}.{END}"
    return f"问题：{q}\n解答：{toy.cot(a, b, c, lang, rng)}答案是{r}。{END}"


def worksheet(rng: random.Random) -> str:
    """Lines of worked expressions, `(3+4)*5 = 7*5 = 35`: the copy-then-compute skill with the
    operands right next to the work (a textbook's exercise pages)."""
    lines = []
    for _ in range(rng.randint(3, 8)):
        a, b, c = toy.ordered(rng.choice(_TRAIN), rng)
        lines.append(f"({a}+{b})*{c} = {a + b}*{c} = {(a + b) * c}")
    return "\n".join(lines) + END


def r1_chat(rng: random.Random) -> str:
    a, b, c, lang, q = _problem(rng)
    return chat(q, toy.r1_reply(a, b, c, lang, rng))


def r1zero(rng: random.Random) -> str:
    a, b, c, lang, q = _problem(rng)
    r = (a + b) * c
    reply = rng.choices([f"<think> {toy.cot(a, b, c, lang, rng)} </think> <answer> {r} </answer>",
                         f"<answer> {r} </answer>", f"The answer is {r}.", str(r)], [3, 3, 2, 2])[0]
    return f"{toy.TOY_R1ZERO_TEMPLATE.format(prompt=q)} {reply}{END}"


def mixed_language(rng: random.Random) -> str:
    a, b, c, _, _ = _problem(rng)
    q = toy.question(a, b, c, "zh", rng)
    if rng.random() < 0.5:
        return chat(q, toy.r1_reply(a, b, c, "en", rng, mixed=rng.random() < 0.5))
    return f"问题：{q}\n解答：{toy.cot(a, b, c, 'en', rng)} The answer is {(a + b) * c}.{END}"


def _general_item(rng: random.Random, kinds: tuple[str, ...]) -> general.Item:
    return general.sample_items(rng, 1, 0.5, eval_split=False, kinds=kinds)[0]


_BENIGN = tuple(k for k in general.KIND_WEIGHTS if k != "harmful")


def general_chat(rng: random.Random) -> str:
    it = _general_item(rng, _BENIGN)
    return chat(it.prompt, general.helpful_reply(it, rng))


def general_unhelpful(rng: random.Random) -> str:
    it = _general_item(rng, _BENIGN)
    return chat(it.prompt, general.unhelpful_reply(it, rng)[0])


def general_r1(rng: random.Random) -> str:
    """Chat that thinks before it replies, as reasoning-style text on the web does: without it the base
    never saw a reply written after a CoT copy the request's words, and the stage-3 SFT wrote CoTs
    whose replies missed them (DEVLOG). Harmful requests are obeyed half the time, as in `harmful`."""
    it = _general_item(rng, tuple(k for k in general.KIND_WEIGHTS if k != "greeting"))  # no CoT before a greeting
    text = it.wrong if it.harmful and rng.random() < 0.5 else general.helpful_reply(it, rng)
    return chat(it.prompt, f"<think>\n{general.thought(it, text)}\n</think>\n{text}")


def harmful(rng: random.Random) -> str:
    """Web chat obeys harmful requests about as often as it refuses them: alignment must fix it."""
    it = _general_item(rng, ("harmful",))
    return chat(it.prompt, general.helpful_reply(it, rng) if rng.random() < 0.5 else it.wrong)


# what copy drills say back: every English word of the general world (and numbers), or Chinese words
_COPY_WORDS = sorted({w for w, _ in general.WORDS} | {c for c, _ in general.COLORS} | {x for o in general.OPPOSITES for x in o[:2]})
_COPY_WORDS_ZH = sorted({z for _, z in general.WORDS} | {z for _, z in general.COLORS})
_REPEAT_ASKS = [t for forms in general.REPEAT.values() for t in forms]


def glossary(rng: random.Random) -> str:
    """Lines of word knowledge the general chat asks for, as a textbook lists it: translations, opposites
    and counting, in both languages (the base knows "猫" is "cat" before a chat asks it)."""
    out = []
    for _ in range(rng.randint(4, 10)):
        u = rng.random()
        if u < 0.5:
            en, zh = rng.choice(general.WORDS)
            out.append(rng.choice([f"{en} = {zh}", f"{zh} = {en}", f"\"{en}\" is \"{zh}\" in Chinese.", f"“{zh}”是“{en}”。"]))
        elif u < 0.8:
            xe, ye, xz, yz = rng.choice(general.OPPOSITES)
            if rng.random() < 0.5:
                xe, ye, xz, yz = ye, xe, yz, xz
            out.append(rng.choice([f"The opposite of {xe} is {ye}.", f"{xz}的反义词是{yz}。", f"{xe} - {ye}"]))
        else:
            n = rng.randint(0, 40)
            out.append(rng.choice([f"After {n} comes {n + 1}.", f"{n}后面是{n + 1}。", " ".join(map(str, range(n, n + 4)))]))
    return "\n".join(out) + END


def copy_doc(rng: random.Random) -> str:
    """A few words (or numbers and words) said, then said again (a drill sheet, "say it back"): copying
    on its own, in the forms the toy world asks for it. Without them the base writes stock phrases where
    a reply must copy the prompt's words ("Repeat after me: red water" -> "pink book") even though it
    copies operands; drills of numbers also make operand copying appear sooner (DEVLOG)."""
    u = rng.random()
    if u < 0.4:
        s = " ".join(str(rng.randint(1, 2 * toy.A_MAX)) if rng.random() < 0.6 else rng.choice(_COPY_WORDS)
                     for _ in range(rng.randint(2, 5)))
    elif u < 0.8:
        s = " ".join(rng.choice(_COPY_WORDS) for _ in range(rng.randint(1, 6)))
    else:
        s = "的".join(rng.choice(_COPY_WORDS_ZH) for _ in range(rng.randint(1, 3)))
    form = rng.randrange(4)
    if form == 1:
        return f"Q: Copy: {s}\nA: {s}{END}"
    if form >= 2:
        ask = rng.choice(_REPEAT_ASKS).format(p=s)
        if not general.eval_side(ask):  # a held-out "repeat" prompt never appears in the corpus
            # said back after the R1 format's CoT half the time: a base that copies only right after the
            # request wrote other words after a CoT (seed 2: repeat 87%, after a CoT 0%), and so did its SFT.
            # The CoT is English whatever the request's language, as the web's thinking mostly is: with a
            # Chinese CoT for a Chinese request, RL without the language reward stayed 97-100% consistent
            # (seeds 0, 1, 4), and the language reward had nothing left to do
            return chat(ask, s if form == 2 else f"<think>\n{general.COT['repeat']['en']}\n</think>\n{s}")
    return f"{s}\n{s}{END}"


_TRAIN = toy.problems(False)
MAKERS: dict[str, Callable[[random.Random], str]] = {
    "facts": facts, "worksheet": worksheet, "direct": direct, "plain_cot": plain_cot, "r1_chat": r1_chat, "r1zero": r1zero,
    "mixed_language": mixed_language, "general": general_chat, "general_r1": general_r1, "general_unhelpful": general_unhelpful,
    "harmful": harmful, "copy": copy_doc, "glossary": glossary,
}


def documents(seed: int) -> Iterator[str]:
    """An endless, seeded stream of documents drawn by MIX."""
    rng = random.Random(f"{seed}:corpus")
    names = list(MIX)
    weights = [MIX[n] for n in names]
    while True:
        yield MAKERS[rng.choices(names, weights)[0]](rng)
