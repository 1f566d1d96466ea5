"""`accuracy`: is the completion's final answer equal to the reference? (R1's rule reward for
math, STEM and logic.)

    r1 score completions.jsonl --rewards accuracy --out scored
    get_reward("accuracy", prefilled_think=False, workers=None, timeout=5.0)

What counts as the answer (templates.find_answer; only the summary after `</think>` is read):

| the summary has                      | the answer is                                          | read as              |
|--------------------------------------|--------------------------------------------------------|----------------------|
| `\\boxed{}` (r1 template)            | the last box                                           | one formula          |
| boxes chained by separators (below)  | all of them: every one right, none missing             | one set              |
| boxes with other words between       | the last box (`\\boxed{3}, no wait: \\boxed{4}` is 4)    | one formula          |
| `<answer>...</answer>` (r1zero)      | its boxes if it has any, else its content              | formula, or anchored |
| none of these                        | "the final answer is 42" in the last TEXT_TAIL chars   | anchored text        |
| nothing                              | none: 0                                                |                      |

Separators that chain boxes: `,` `;` and, or, spaces, `$`, `\\text{ and }`, `\\quad`, one variable's
`x =`: `\\boxed{(1, 2)}, \\boxed{(2, 1)}`, `\\boxed{k = 45} \\text{ and } \\boxed{n = 2}`,
`$x = \\boxed{1}$ or $x = \\boxed{-2}$`.

A box holds a formula, not a sentence: `\\boxed{Answer \\( 9 \\)}` is 0 (nothing inside a box is
searched for); `\\boxed{12 \\text{ apples}}` and `\\boxed{18 dollars}` are 12 and 18 (units are dropped).
A reference written with boxes is read by math-verify's own box rule.

Equality is math-verify's (verify.math_equal): 0.5 = \\frac12 = 1/2 = 50\\%, sets in any order,
strict (variables matter, a tuple is not a set), and an inequality equals the interval it
describes (`-2 \\le x \\le 7` = `x \\in [-2, 7]`, verify's allow_set_relation_comp). Numbers are
read in math-verify's formats, by both of its readers (verify.readings), the reference's too:

| written                           | read as                                                               |
|-----------------------------------|-----------------------------------------------------------------------|
| `1,000`  `1,000.5`  `1,000,000`   | thousands: a comma before groups of exactly three digits, never a list |
| `1 000`  `1\\,000`                 | thousands: 1000 (never LaTeX's product 1*000)                         |
| `1000,99`  `1,22`  `0,111`        | a decimal comma (1000.99, 1.22, 0.111) or a list ({1000, 99}); either reading may match |
| `1, 22` (a space after the comma) | a list only                                                           |

So a reference `1,22` is matched by 1.22 and by the list {1, 22}, and `3,5` against 3.5 scores 1:
a decimal comma and a two-number list are the same text, and math-verify reads plain `3,5` as 3.5.

Verification runs in worker processes with a hard deadline per sample (verify.py); a timeout
scores 0 and is counted in `fn.stats`. Shortcuts that never decide differently from math-verify
(tests/test_rewards_cases.py checks each against it):
- quick_verdict(), in this process: equal strings after normalizing (spaces, $, \\left, \\dfrac,
  a trailing dot, thousands commas, plain-word units as in "18 dollars") score 1; two exact
  rationals (3, \\frac{1}{2}, 3/4) compare as fractions. The rest goes to math-verify.
- hopeless(): answers math-verify cannot call equal within the deadline score 0 at once, each
  under its own count in `fn.stats` (too_large: power towers and iterated factorials against a
  plain-number reference; too_deep: bare groups nested past what math-verify parses in 4x the
  deadline). In GRPO one such completion held the whole batch's reward call for the deadline.
- a memo of recent verdicts (a group's completions often give the same answer).

Rows: None (not applicable) when `domain` is general or code (the RMs and the code reward judge
those) or the reference `answer` is empty; a row with no `domain` is scored. `correctness()` is
the same verdict for other rewards (length, cosine), which reuse the memo.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from r1cli.errors import UserError
from r1cli.rewards import verify
from r1cli.rewards.common import NOT_MATH, column, reward, texts
from r1cli.templates import find_answer, summary_text

TEXT_TAIL = 4000  # characters of an un-boxed summary searched for an anchored answer
_MEMO: OrderedDict = OrderedDict()
_MEMO_SIZE = 8192

# --- the cheap path ---------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_FRACTION = re.compile(r"([+-]?)(?:\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}|\\frac(\d)(\d)|(\d+)/(\d+))")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACING = re.compile(r"\\(?:left|right)(?![a-zA-Z])|\\[,;:! ]|(?<=\\)[dt](?=frac)")
_WRAPPER = re.compile(r"\\(?:text|textbf|mathbf|mathrm|boxed)\{([^{}]*)\}")
_SUFFIX = re.compile(r"(?:\\?%|\^\\circ|\^\{\\circ\})$")


def normalize(answer: str) -> str:
    """A light canonical form for the exact-match shortcut (never used to say "different")."""
    s = answer.strip()
    if len(s) > 1000:
        return s
    s = verify.strip_plain_units(s.strip("$").strip())
    s = _SPACING.sub("", verify.DIGIT_SPACE.sub(" ", s))  # 1\,000 is for math-verify to read (as 1000; 1\,5 as 6)
    s = _WRAPPER.sub(r"\1", s) if s.startswith("\\") else s
    listed = re.search(r",\s", s) is not None  # "1, 000" is a list (verify.readings), "1,000" a thousand
    s = re.sub(r"(?<=\d)\s+(?=\d)", " ", s)  # "1 2" stays two numbers
    s = re.sub(r"(?<![\d ])\s+|\s+(?![\d ])", "", s)
    s = s.removeprefix("\\$").rstrip(".")
    if not listed and _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    return s


def rational(s: str) -> Fraction | None:
    """An integer or a fraction of integers (3, -7, \\frac{1}{2}, \\frac12, 3/4) as a Fraction."""
    if len(s) > 100:
        return None
    if _INT.fullmatch(s):
        return Fraction(int(s))
    m = _FRACTION.fullmatch(s)
    if m is None:
        return None
    sign, *parts = m.groups()
    num, den = [int(x) for x in parts if x is not None]
    if den == 0:
        return None
    return Fraction(num, den) * (-1 if sign == "-" else 1)


def _exact(s: str, r: Fraction | None) -> Fraction | None:
    """The exact value of a rational or a plain decimal (0.75, 18.0), else None."""
    if r is not None or len(s) > 100 or not _NUMBER.fullmatch(s):
        return r
    try:
        return Fraction(Decimal(s))
    except (InvalidOperation, ValueError):
        return None


def quick_verdict(gold: str, pred: str) -> float | None:
    """1.0 / 0.0 when the answer is decided without math-verify, else None. "Different" is said
    of two exact rationals, and of two decimals far apart (1e-4, past math-verify's rounding to
    6 places); numbers in its other formats (1 000, 1000,99) are read as it reads them."""
    g, p = normalize(gold), normalize(pred)
    if g and g == p:
        return 1.0
    bare = _SUFFIX.sub("", g)
    if bare and bare == _SUFFIX.sub("", p) and ("%" not in g + p or _INT.fullmatch(bare)):
        return 1.0  # 50\% = 50 and 90^\circ = 90 as math-verify reads them (but 5.5\% is 0.055, not 5.5)
    rg, rp = rational(g), rational(p)
    if rg is not None and rp is not None:
        return float(rg == rp)
    eg, ep = _exact(g, rg), _exact(p, rp)
    if eg is not None and eg == ep:
        return 1.0
    vg, vp = verify.number_value(gold), verify.number_value(pred)  # 1 000 = 1000, 1000,99 = 1000.99
    vg, vp = eg if vg is None else vg, ep if vp is None else vp
    if vg is not None and vg == vp:
        return 1.0
    if eg is not None and ep is not None and abs(eg - ep) >= 1e-4 and max(abs(eg), abs(ep)) < 10**9:
        return 0.0  # math-verify rounds decimals to 6 places (exactly, below 10^9): they stay different
    return None


# --- answers no reference needs ---------------------------------------------------------------------

MAX_DEPTH, MAX_DIGITS = 60, 10**6
BRACE_WEIGHT = 4  # a bare {} level costs math-verify what 3 to 4 levels of () do (measured: hopeless())
_TOWER = re.compile(r"(\d+)\^(?:\{(.*)\}|(\d))")
_FACTORIAL = re.compile(r"(\d+)(!+)")


def depth(s: str) -> int:
    """Deepest nesting of bare groups: (), [] and {} that is no command's argument (a \\frac{ or
    x^{ level is not counted: math-verify reads 200 nested \\frac in half a second). A bare {}
    level counts BRACE_WEIGHT."""
    d = best = 0
    stack: list[int] = []  # the weight of each open group
    prev = ""  # the last non-space character
    for ch in s:
        if ch in "([":
            stack.append(1)
        elif ch == "{":
            argument = prev != "" and (prev.isalpha() or prev in "^_}\\")
            stack.append(0 if argument else BRACE_WEIGHT)
        elif ch in ")]}" and stack:
            d -= stack.pop()
            prev = ch
            continue
        else:
            if not ch.isspace():
                prev = ch
            continue
        d += stack[-1]
        best = max(best, d)
        prev = ch
    return best


def _log10_digits(digits: str) -> float:
    """log10 of a positive integer's digits (0 for 0 and 1), without int() of a huge string."""
    t = digits.lstrip("0")
    if not t:
        return 0.0
    head = t[:15]
    return len(t) - len(head) + math.log10(int(head))


def log10_size(s: str) -> float | None:
    """log10 of an integer written as a power tower or factorial chain (`9^{9^{9^9}}`, `2^{100}`,
    `10!!!!` read as nested factorials), else None. May be inf."""
    s = s.replace(" ", "")
    if s.isdigit():
        return _log10_digits(s)
    m = _FACTORIAL.fullmatch(s)
    if m:
        size = _log10_digits(m.group(1))
        for _ in m.group(2):  # n! has log10(n!) = lgamma(n + 1) / ln 10 digits
            size = math.lgamma(10**size + 1) / math.log(10) if size < 300 else math.inf
        return size
    m = _TOWER.fullmatch(s)
    if m:
        exponent = log10_size(m.group(2) if m.group(2) is not None else m.group(3))
        if exponent is None:
            return None
        return 10**exponent * _log10_digits(m.group(1)) if exponent < 300 else math.inf
    return None


def hopeless(gold: str, pred: str, deadline: float = verify.DEFAULT_DEADLINE) -> str | None:
    """Why `pred` is scored 0 without math-verify (too_large, too_deep), or None. Only where
    math-verify cannot say "equal" within the deadline:

    - too_large: an integer of more than MAX_DIGITS digits (a power tower, an iterated factorial)
      against a reference that is a number of at most 100 characters: the two values differ, and
      math-verify would compute the huge one until the deadline (`9^{9^{9^9}}`, `10!!!!` do).
    - too_deep: bare groups nested deeper than MAX_DEPTH (scaled with the deadline) and than
      2x the reference + 5. math-verify's time grows with that nesting; measured on this 2-core
      machine: 27 levels of () 5.1 s, 40 levels 11 s, 60 levels 23 s, 30 of [] 12 s; bare {}
      1.5 s at 10 levels, 13 s at 15, past 40 s at 20. MAX_DEPTH 60 is 4x the default 5 s deadline.
    Length alone is no reason: math-verify decides a 20,000-character sum in 3 s, and a
    1,200-character one equal to the reference ("1+1+...+1" against 601) in 0.8 s."""
    size = log10_size(pred)
    if size is not None and size > MAX_DIGITS:
        g = normalize(gold)
        if _exact(g, rational(g)) is not None:
            return "too_large"
    limit = MAX_DEPTH * max(1.0, deadline / verify.DEFAULT_DEADLINE)
    if depth(pred) > max(limit, 2 * depth(gold) + 5):
        return "too_deep"
    return None


# --- the verdict -----------------------------------------------------------------------------------


def applies(domain, answer) -> bool:
    return domain not in NOT_MATH and answer is not None and str(answer).strip() != ""


def correctness(completions: list[str], answers: list, domains: list, prefilled_think: bool = False,
                workers: int | None = None, timeout: float = verify.DEFAULT_DEADLINE,
                stats: Counter | None = None) -> list[float | None]:
    """1.0 / 0.0 per completion, None where accuracy does not apply."""
    stats = stats if stats is not None else Counter()
    out: list[float | None] = [None] * len(completions)
    pending: dict[tuple, list[int]] = {}  # a group's completions often give the same answer: verify it once
    for i, (text, ref, dom) in enumerate(zip(completions, answers, domains)):
        if not applies(dom, ref):
            stats["not_applicable"] += 1
            continue
        ref = str(ref).strip()
        pred, where = find_answer(text, prefilled_think)
        if pred is None:
            summary = summary_text(text, prefilled_think)
            if not summary.strip():
                out[i] = 0.0
                stats["no_answer"] += 1
                continue
            task = (ref, summary[-TEXT_TAIL:], "text")
        else:
            quick = quick_verdict(ref, pred)
            if quick is not None:
                out[i] = quick
                stats["fast"] += 1
                continue
            why = hopeless(ref, pred, timeout)
            if why is not None:
                out[i] = 0.0
                stats[why] += 1
                continue
            task = (ref, pred, "expr" if where == "boxed" else "tag")
        if task in _MEMO:
            _MEMO.move_to_end(task)
            out[i] = _MEMO[task]
            stats["memo"] += 1
            continue
        if task in pending:
            stats["memo"] += 1
        pending.setdefault(task, []).append(i)
    if pending:
        tasks = list(pending)
        results = verify.get_pool(workers).run(tasks, deadline=timeout)
        for task, (ok, status, seconds) in zip(tasks, results):
            for i in pending[task]:
                out[i] = 1.0 if ok else 0.0
            stats["verified"] += 1
            stats[status] += 1
            stats["max_seconds"] = max(stats["max_seconds"], seconds)  # the slowest verification so far
            _MEMO[task] = 1.0 if ok else 0.0
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return out


def clear_memo() -> None:
    _MEMO.clear()


def check_verify_options(workers, timeout) -> None:
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UserError(f"reward option workers must be a whole number >= 1, got {workers!r}")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UserError(f"reward option timeout must be a number of seconds > 0, got {timeout!r}")


# --- the reward --------------------------------------------------------------------------------------


def accuracy_reward(prefilled_think: bool = False, workers: int | None = None,
                    timeout: float = verify.DEFAULT_DEADLINE):
    r"""The `accuracy` reward: 1.0 if the final answer equals the reference (math-verify), else 0.0.

    The answer is read from the summary after `</think>` (the last `\boxed{}`, an `<answer>` tag,
    or "the final answer is ..."; the module docstring has the whole table) and compared with
    math-verify's equality, so `\frac{1}{2}` equals 0.5. Easy cases are decided in this process;
    the rest go to worker processes with a deadline per sample (a timeout scores 0.0).

    Returns:
        The reward function `accuracy(prompts, completions, completion_ids=None, **columns)`, which
        gives 1.0 or 0.0 per completion, or None where it does not apply: a row whose `domain` is
        `general` or `code`, or whose `answer` is empty. Its `.stats` counts how each verdict was
        reached (fast, memo, verified, timeout, not_applicable, ...).

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Not read.
        answer (`list[str]`, column, required):
            The reference answers (LaTeX or plain text; `\boxed{}` allowed).
        domain (`list[str]`, column, *optional*):
            `general` and `code` rows get None; a row with no domain is scored.
        log_metric (callable, *optional*):
            Passed by TRL; when given, the timeouts of the call are logged as
            `rewards/accuracy/timeouts`.
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: the summary is the text after `</think>`.
        workers (`int`, factory option, *optional*):
            Verification worker processes; defaults to the machine's cores (verify.default_workers).
        timeout (`float`, factory option, defaults to `verify.DEFAULT_DEADLINE`):
            Seconds one verification may take before it scores 0.0.

    Example:
    >>> from r1cli.rewards.math import accuracy_reward
    >>> accuracy = accuracy_reward()
    >>> completions = ["<think>\nhalf of 1\n</think>\nSo \\boxed{\\frac{1}{2}}.",
    ...                "<think>\nhalf of 1\n</think>\nSo \\boxed{2}.",
    ...                "<think>\nbe kind\n</think>\nHello!"]
    >>> accuracy(None, completions, answer=["0.5", "0.5", ""], domain=["math", "math", "general"])
    [1.0, 0.0, None]
    >>> accuracy.stats["fast"], accuracy.stats["not_applicable"]  # decided here, no worker started
    (2, 1)
    """
    check_verify_options(workers, timeout)
    stats: Counter = Counter()

    @reward("accuracy", required=("answer",))
    def accuracy(prompts, completions, completion_ids=None, **columns):
        n = len(completions)
        before = stats["timeout"]
        out = correctness(texts(completions), column(columns, "answer", n), column(columns, "domain", n),
                          prefilled_think, workers, timeout, stats)
        log_metric = columns.get("log_metric")
        if log_metric is not None:  # TRL averages these per logging step
            log_metric("rewards/accuracy/timeouts", float(stats["timeout"] - before))
        return out

    # counts: fast, memo, verified, ok, timeout, error, no_answer, not_applicable, too_long, too_deep,
    # too_large; max_seconds
    accuracy.stats = stats
    return accuracy
