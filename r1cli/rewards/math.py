"""`accuracy`: is the completion's final answer equal to the reference? (R1's rule reward for
math, STEM and logic.)

    r1 score completions.jsonl --rewards accuracy --out scored
    get_reward("accuracy", prefilled_think=False, workers=None, timeout=5.0)

- The answer is the summary's last `\\boxed{}` (an `<answer>` tag for the r1zero template;
  templates.extract_answer). With neither, math-verify looks in the summary's tail for an
  anchored answer ("the final answer is 42").
- Equality is math-verify's (parse + verify): 0.5 = \\frac12 = 1/2 = 50\\%, 7,425,000 = 7425000,
  sets and intervals, LaTeX or plain. Verification runs in worker processes with a hard
  deadline per sample (verify.py); a timeout scores 0 and is counted in `fn.stats`.
- Cheap cases first, in this process: equal strings after normalizing (spaces, $, \\left,
  \\dfrac, a trailing dot, thousands commas, plain-word units as in "18 dollars") score 1;
  two exact rationals (3, \\frac{1}{2}, 3/4) compare as fractions. The rest, and every
  other "no", goes to math-verify.
- Answers no reference needs are scored 0 without math-verify, each under its own count in
  `fn.stats` (hopeless()): longer than MAX_CHARS characters and 4x the reference, nested deeper
  than MAX_DEPTH levels and 2x the reference + 5, or an integer of more than MAX_DIGITS digits
  (power towers, iterated factorials). math-verify cannot finish those within a deadline (measured:
  `9^{9^{9^9}}`, `7^{9999999}`, `10!!!!`, 500 nested parentheses and a 50,000-character sum each
  ran into the 5 s deadline; 19 nested parentheses took 2.3 s), and in GRPO one such completion
  held the whole batch's reward call for the deadline.
- Rows: None (not applicable) when `domain` is general or code (the RMs and the code reward
  judge those) or the reference `answer` is empty; a row with no `domain` is scored.
- `correctness()` is the same verdict for other rewards (length, cosine); a small memo of
  recent verdicts lets them reuse what `accuracy` just computed on the same batch.
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
from r1cli.templates import extract_answer, summary_text

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
    s = _SPACING.sub("", s)
    s = _WRAPPER.sub(r"\1", s) if s.startswith("\\") else s
    s = re.sub(r"(?<=\d)\s+(?=\d)", " ", s)  # "1 2" stays two numbers
    s = re.sub(r"(?<![\d ])\s+|\s+(?![\d ])", "", s)
    s = s.removeprefix("\\$").rstrip(".")
    if _THOUSANDS.fullmatch(s):
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
    """1.0 / 0.0 when the answer is decided without math-verify, else None. "Different" is
    only said of two exact rationals; decimals are left to math-verify's rounding rules."""
    g, p = normalize(gold), normalize(pred)
    if g and g == p:
        return 1.0
    bare = _SUFFIX.sub("", g)
    if bare and bare == _SUFFIX.sub("", p):  # 50\% = 50 and 90^\circ = 90, as math-verify reads them
        return 1.0
    rg, rp = rational(g), rational(p)
    if rg is not None and rp is not None:
        return float(rg == rp)
    eg, ep = _exact(g, rg), _exact(p, rp)
    if eg is not None and eg == ep:
        return 1.0
    return None


# --- answers no reference needs ---------------------------------------------------------------------

MAX_CHARS, MAX_DEPTH, MAX_DIGITS = 1000, 20, 10**6
_TOWER = re.compile(r"(\d+)\^(?:\{(.*)\}|(\d))")
_FACTORIAL = re.compile(r"(\d+)(!+)")


def depth(s: str) -> int:
    """Deepest nesting of (), [] and {} (a backslash-escaped brace counts too)."""
    d = best = 0
    for ch in s:
        if ch in "([{":
            d += 1
            best = max(best, d)
        elif ch in ")]}":
            d -= 1
    return best


def log10_size(s: str) -> float | None:
    """log10 of an integer written as a power tower or factorial chain (`9^{9^{9^9}}`, `2^{100}`,
    `10!!!!` read as nested factorials), else None. May be inf."""
    s = s.replace(" ", "")
    if s.isdigit():
        return math.log10(int(s)) if int(s) > 0 else 0.0
    m = _FACTORIAL.fullmatch(s)
    if m:
        size = math.log10(max(1, int(m.group(1))))
        for _ in m.group(2):  # n! has log10(n!) = lgamma(n + 1) / ln 10 digits
            size = math.lgamma(10**size + 1) / math.log(10) if size < 300 else math.inf
        return size
    m = _TOWER.fullmatch(s)
    if m:
        exponent = log10_size(m.group(2) if m.group(2) is not None else m.group(3))
        if exponent is None:
            return None
        return 10**exponent * math.log10(max(1, int(m.group(1)))) if exponent < 300 else math.inf
    return None


def hopeless(gold: str, pred: str) -> str | None:
    """Why `pred` is scored 0 without math-verify (too_long, too_deep, too_large), or None."""
    if len(pred) > max(MAX_CHARS, 4 * len(gold)):
        return "too_long"
    if depth(pred) > max(MAX_DEPTH, 2 * depth(gold) + 5):
        return "too_deep"
    size = log10_size(pred)
    if size is not None and size > MAX_DIGITS:
        return "too_large"
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
        pred = extract_answer(text, prefilled_think)
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
            why = hopeless(ref, pred)
            if why is not None:
                out[i] = 0.0
                stats[why] += 1
                continue
            task = (ref, pred, "expr")
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
    """The `accuracy` reward: 1 if the final answer equals the reference (math-verify), else 0."""
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
