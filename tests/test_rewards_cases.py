"""`accuracy` on tests/data/accuracy_cases.jsonl (R1-format completions, each class right and
wrong: several boxed answers, number formats, intervals and inequalities, a box holding words),
and its shortcuts (quick_verdict, hopeless, the memo) checked against math-verify itself."""

import json
import random
from pathlib import Path

import pytest

from r1cli.rewards import get_reward, verify
from r1cli.rewards.math import clear_memo, hopeless, quick_verdict
from r1cli.templates import find_answer

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "accuracy_cases.jsonl").read_text().splitlines()]
CLASSES = ("multiple_boxes", "number_format", "interval", "strict_box")
MODE = {"boxed": "expr", "tag": "tag", "none": "text"}


def task(case):
    """What the reward hands math-verify for a case, without its shortcuts."""
    answer, where = find_answer(case["completion"])
    summary = case["completion"].split("</think>")[-1]
    return case["reference"], answer if answer is not None else summary, MODE[where]


@pytest.fixture(scope="module")
def verdicts():
    clear_memo()
    acc = get_reward("accuracy", timeout=60.0)  # verdicts, not deadlines: a loaded machine is slow
    return acc([""] * len(CASES), [c["completion"] for c in CASES], answer=[c["reference"] for c in CASES])


def test_every_class_has_right_and_wrong_cases():
    for cls in CLASSES:
        assert {c["expected"] for c in CASES if c["class"] == cls} == {0, 1}, cls


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c['class']}-{c['reference']}-{c['expected']}" for c in CASES])
def test_case(verdicts, i):
    case = CASES[i]
    assert verdicts[i] == case["expected"], (case["reference"], case["completion"].split("</think>")[-1])


def test_the_reward_is_math_verifys_verdict(verdicts):
    """The reward (shortcuts, memo) against math-verify run on every case with none of them."""
    results = verify.get_pool().run([task(c) for c in CASES], deadline=60.0)
    assert all(status == verify.OK for _, status, _ in results)
    assert [float(ok) for ok, _, _ in results] == verdicts


def numbers(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(reference, answer) pairs of numbers written in the formats models use, equal or near."""
    def write(x: int, cents: int) -> str:
        plain = f"{x}.{cents:02d}" if cents else str(x)
        style = rng.randrange(12)
        if style == 1:
            return f"{x:,}" + (f".{cents:02d}" if cents else "")
        if style == 2:
            return f"{x:,}".replace(",", " ") + (f".{cents:02d}" if cents else "")
        if style == 3:
            return f"{x:,}".replace(",", "\\,") + (f".{cents:02d}" if cents else "")
        if style == 4 and cents:
            return f"{x},{cents:02d}"
        if style == 5:
            return f"\\${plain}"
        if style == 6:
            return f"{plain}\\%"
        if style == 7:
            return f"\\frac{{{x * 100 + cents}}}{{100}}"
        if style == 8:
            return f"{x:,}".replace(",", "{,}") + (f".{cents:02d}" if cents else "")
        if style == 9:
            return f"{plain} dollars"
        if style == 10:
            return f"-{plain}"
        return plain
    out = []
    for _ in range(n):
        x, cents = rng.choice([rng.randrange(10), rng.randrange(10**7)]), rng.choice([0, 0, rng.randrange(100)])
        y, c2 = rng.choice([(x, cents), (x + 1, cents), (x, (cents + 1) % 100), (x * 10, cents)])
        out.append((write(x, cents), write(y, c2)))
    return out


# spacing, commas and suffixes where a normalized string could say "equal" and math-verify not
TRICKY = ["1, 000", "1,000", "1000", "1 000", "1\\,000", "1\\,5", "15", "1,5", "1.5", "1, 5", "\\{1,5\\}", "1{,}5",
          "0,5", ".5", "\\frac{1}{2}", "-1 000", "- 1000", "1000.", "1000,0", "25\\%", "25", "0.25", "25.0\\%", "5.5\\%",
          "5.5", "\\$1 000", "1 000 dollars", "12 345", "357", "70^\\circ", "70", "1,0001", "1000.1", "10001", "01,5", "1.50",
          "\\text{1 000}", "1 000.", "1000,99", "1000.99", "1 000,5", "0,111", "0.111", "1,000,000", "1 000 000", "1000000"]


def test_quick_verdict_never_decides_differently_from_math_verify():
    pairs = numbers(random.Random(0), 300) + [(g, p) for g in TRICKY for p in TRICKY]
    decided = [(g, p, quick_verdict(g, p)) for g, p in pairs]
    decided = [(g, p, q) for g, p, q in decided if q is not None]
    assert len(decided) > 200  # the shortcut is exercised
    results = verify.get_pool().run([(g, p, "expr") for g, p, _ in decided], deadline=60.0)
    assert [(g, p, q) for (g, p, q), (ok, _, _) in zip(decided, results) if q != float(ok)] == []


def test_hopeless_never_fires_on_answers_math_verify_decides():
    """Long or nested answers math-verify decides (measured: well within the deadline) are verified."""
    decided = [("601", "1+" * 600 + "1"), ("3", "3 \\text{ " + "because " * 200 + "}"), ("1", "\\frac{" * 40 + "1" + "}{1}" * 40),
               ("3", "(" * 21 + "3" + ")" * 21), ("3", "{" * 8 + "3" + "}" * 8), ("2", "\\sqrt{" * 30 + "4" + "}" * 30)]
    assert [hopeless(g, p) for g, p in decided] == [None] * len(decided)
    assert all(hopeless(c["reference"], task(c)[1]) is None for c in CASES)
    # and fires on a tower against a number, not against a reference that is a power itself
    assert hopeless("5", "9^{9^{9^9}}") == "too_large" and hopeless("9^{9^{9^9}}", "9^{9^{9^9}}") is None
    assert hopeless("x+1", "9^{9^{9^9}}") is None
    assert hopeless("3", "(" * 61 + "3" + ")" * 61) == "too_deep"
    assert hopeless("3", "(" * 61 + "3" + ")" * 61, deadline=60.0) is None  # a longer deadline lets math-verify try
