"""Samples/s of r1cli's `accuracy` reward against the strongest plain scorer a user would run instead,
TRL's own `accuracy_reward` (trl.rewards), and against a serial math-verify loop; on ordinary
completions and with pathological ones mixed in; with 1 and 2 reward workers; in one command.
Targets: see bench/README.md.

    PYTHONPATH=$PWD .venv/bin/python bench/rewards.py [--n 4000] [--pathological 10] [--deadline 5] [--reps 3]
        [--quick] [--no-check]

The completions mimic GSM8K and MATH-500 answers (integers written with commas, units, $ or
.0; fractions vs decimals, roots, intervals, sets, tuples, polynomials; right and wrong; some
with no \\boxed{} but "the final answer is ..."), every (reference, answer) pair distinct so
no cache helps. The second set is the same completions plus --pathological ones (9^{9^{9^9}}-style
towers, 50,000-character outputs and answers, deeply nested \\frac / parentheses / \\sqrt), about
0.25% of it by default, shuffled in.

Contenders, each run once per repetition on each set, in turn (A B C D ... A B C D ...):
- r1 accuracy, W workers: `get_reward("accuracy", workers=W, timeout=--deadline)` called as TRL calls
  it, 256 completions a call; its pool is started (and its memo cleared) before the clock starts.
  Answers math-verify cannot call equal within the deadline (math.py's hopeless()) score 0 at once.
- TRL accuracy_reward: `trl.rewards.accuracy_reward(completions, solution)` in this process, 256 a call,
  as GRPOTrainer calls it (its own math-verify timeouts: 10 s a parse, 5 s a verify).
- serial loop: `verify(parse(reference), parse(completion))` per sample, math-verify's defaults.
Printed: each one's samples/s (median and min-max over reps), r1's ratio to each baseline taken
within each repetition; the headline is r1 (2 workers) against the fastest baseline on ordinary
completions. Then how often the verdicts agree, and (unless --no-check) that the reward's shortcuts
(quick_verdict, hopeless) never decide differently from math-verify as the reward runs it.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import time
from collections import Counter

import _timing

BOX = "<think>\n{cot}\n</think>\nSo the final answer is $\\boxed{{{ans}}}$."


# --- the completions ------------------------------------------------------------------------------------


def normal_case(rng: random.Random, i: int) -> tuple[str, str]:
    """(reference, completion) with a unique pair; about half right."""
    kind = i % 12
    right = rng.random() < 0.5
    a, b = rng.randint(2, 9999) + i * 10_000, rng.randint(2, 97)
    cot = f"Step 1: compute {a} and {b}. Step 2: combine them."
    if kind < 4:  # GSM8K: integers
        ref = str(a)
        forms = [str(a), f"{a:,}", f"{a}.0", f"\\${a}", f"{a} dollars", f"\\text{{{a}}}", f"{a:,}".replace(",", " ")]
        ans = rng.choice(forms) if right else str(a + rng.choice([-1, 1, 10]))
    elif kind == 4:  # no box: an anchored answer in the summary
        ref = str(a)
        return ref, f"<think>\n{cot}\n</think>\nThe final answer is {a if right else a + 1}."
    elif kind == 5:  # fractions and decimals
        ref = f"\\frac{{{a}}}{{{b}}}"
        ans = (f"{a}/{b}" if rng.random() < 0.5 else f"\\dfrac{{{a * 2}}}{{{b * 2}}}") if right else f"\\frac{{{b}}}{{{a}}}"
    elif kind == 6:
        ref = f"{a / 4:.2f}" if a % 4 == 0 else f"{a}.5"
        ans = (f"\\frac{{{2 * a + 1}}}{{2}}" if ref.endswith(".5") else f"\\frac{{{a}}}{{4}}") if right else f"{a}.25"
        if right and ref.endswith(".5") and rng.random() < 0.3:
            ans = f"{a},5"  # a decimal comma
    elif kind == 7:  # roots
        ref = f"{b}\\sqrt{{2}}"
        ans = f"\\sqrt{{{2 * b * b}}}" if right else f"\\sqrt{{{2 * b * b + 1}}}"
    elif kind == 8:  # intervals
        ref = f"[-{b}, {a})"
        ans = (f"[-{b},{a})" if rng.random() < 0.7 else f"-{b} \\le x < {a}") if right else f"(-{b}, {a}]"
    elif kind == 9:  # sets and tuples
        ref = f"\\{{{a}, {b}, {a + b}\\}}" if i % 2 else f"({a}, {b})"
        ans = (f"\\{{{a + b}, {b}, {a}\\}}" if i % 2 else f"\\left({a},{b}\\right)") if right else f"({b}, {a})"
        if i % 2 and rng.random() < 0.3:  # several boxes
            ans = f"{a + b}}}, \\boxed{{{b}}} \\text{{ and }} \\boxed{{{a}" if right else f"{a}}}, \\boxed{{{b}"
    elif kind == 10:  # polynomials
        ref = f"x^2 + {2 * b}x + {b * b}" + f" + {i}"
        ans = f"(x+{b})^2 + {i}" if right else f"(x-{b})^2 + {i}"
    else:  # LaTeX vs plain with pi
        ref = f"\\frac{{{b}\\pi}}{{{a}}}"
        ans = f"{b}\\pi/{a}" if right else f"{b + 1}\\pi/{a}"
    return ref, BOX.format(cot=cot, ans=ans)


def pathological_cases(n: int) -> list[tuple[str, str]]:
    long_cot = ("We keep thinking about the problem. " * 1500)[:50_000]
    kinds = [
        ("5", BOX.format(cot="big", ans="9^{9^{9^9}}")),
        ("3", BOX.format(cot="big", ans="10^{10^{10}}")),
        ("3", BOX.format(cot="big", ans="99999999999999999999^{99999999}")),
        ("7", BOX.format(cot=long_cot, ans="7")),                                       # 50k-char output, right
        ("7", BOX.format(cot=long_cot, ans="8")),                                       # 50k-char output, wrong
        ("3", BOX.format(cot="x", ans="1+" * 25_000 + "1")),                            # 50k-char answer
        ("3", BOX.format(cot="x", ans="\\frac{" * 200 + "1" + "}{2}" * 200)),           # deeply nested LaTeX
        ("3", BOX.format(cot="x", ans="(" * 500 + "1" + ")" * 500)),
        ("3", BOX.format(cot="x", ans="\\sqrt{" * 100 + "2" + "}" * 100)),
        ("3", BOX.format(cot="x", ans="10!!!!")),
        ("3", long_cot),                                                                # 50k chars, no answer at all
        ("3", "<think>\n" + "\\boxed{" * 7_000),                                         # unbalanced braces
    ]
    return [(ref, comp.replace("big", f"big {i}")) for i, (ref, comp) in
            ((i, kinds[i % len(kinds)]) for i in range(n))]


# --- the contenders --------------------------------------------------------------------------------------

BATCH = 256  # completions a reward call, as a GRPO step hands them over


def run_ours(fn, refs, comps) -> list:
    out = []
    for s in range(0, len(comps), BATCH):
        out += fn([""] * len(comps[s:s + BATCH]), comps[s:s + BATCH], answer=refs[s:s + BATCH])
    return out


def run_trl(refs, comps) -> list:
    from trl.rewards import accuracy_reward

    out = []
    for s in range(0, len(comps), BATCH):
        msgs = [[{"role": "assistant", "content": c}] for c in comps[s:s + BATCH]]
        out += accuracy_reward(msgs, refs[s:s + BATCH])
    return out


def run_serial(refs, comps) -> list:
    from math_verify import parse, verify

    return [1.0 if verify(parse(f"${ref}$"), parse(comp)) else 0.0 for ref, comp in zip(refs, comps)]


def answer_kind(ref: str, comp: str) -> str:
    """A short label for the bench's differing pairs."""
    summary = comp.rsplit("</think>", 1)[-1]
    if summary.count("\\boxed") > 1:
        return "several boxes"
    if "\\boxed" not in summary:
        return "no box" if len(comp) < 10_000 else "pathological"
    box = summary[summary.find("\\boxed"):]
    if "\\le" in box:
        return "inequality"
    if re.search(r"\d [a-z]{3,}", box):
        return "plain-word unit"
    if any(f"{d} {e}" in box or f"{d},{e}" in box for d in "0123456789" for e in "0123456789"):
        return "number format"
    return "pathological" if len(comp) > 10_000 or len(box) > 300 else "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="ordinary completions")
    ap.add_argument("--pathological", type=int, default=10, help="added to the ordinary ones for the second set")
    ap.add_argument("--deadline", type=float, default=5.0, help="seconds per sample (math-verify's own default is 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip checking the shortcuts against math-verify")
    _timing.add_args(ap)
    args = ap.parse_args()
    _timing.check_reps(args.reps)
    if args.quick:
        args.n, args.pathological = 200, 2
    for name in ("math_verify", "latex2sympy2_extended"):  # every failed parse logs the whole text
        logging.getLogger(name).setLevel(logging.CRITICAL)

    from r1cli.rewards import get_reward, verify
    from r1cli.rewards.math import clear_memo, hopeless, quick_verdict
    from r1cli.templates import find_answer

    rng = random.Random(args.seed)
    ordinary = [normal_case(rng, i) for i in range(args.n)]
    mixed = ordinary + pathological_cases(args.pathological)
    rng.shuffle(mixed)
    sets = {"ordinary": ordinary, "+pathological": mixed}
    print(_timing.machine())
    print(f"{len(ordinary)} ordinary completions ({len({*ordinary})} distinct); the second set adds "
          f"{args.pathological} pathological ones ({100 * args.pathological / len(mixed):.2f}% of {len(mixed)})",
          flush=True)

    fns = {w: get_reward("accuracy", workers=w, timeout=args.deadline) for w in (1, 2)}
    warm = ([""], [BOX.format(cot="warm", ans="\\sqrt{4}")])  # not the fast path: starts the pool
    for w, fn in fns.items():
        t = time.monotonic()
        verify.get_pool(w)
        fn(*warm, answer=["2"])
        print(f"pool start ({w} worker{'s' * (w > 1)}, to the first verdict): {time.monotonic() - t:.2f} s")

    verdicts: dict[str, list] = {}

    def contender(name: str, cases, score):
        refs, comps = [c[0] for c in cases], [c[1] for c in cases]

        def go() -> float:
            prepare = getattr(score, "prepare", None)
            if prepare:
                prepare()
            t = time.monotonic()
            verdicts[name] = score(refs, comps)
            return (time.monotonic() - t) / len(cases)
        return go

    def ours(w: int):
        def score(refs, comps):
            return run_ours(fns[w], refs, comps)

        def prepare():  # untimed: the process-wide pool is rebuilt when the worker count changes
            verify.get_pool(w)
            fns[w](*warm, answer=["2"])
            clear_memo()
        score.prepare = prepare
        return score

    sides = {}
    for set_name, cases in sets.items():
        sides[f"r1 accuracy, 2 workers, {set_name}"] = contender(f"r1 2w {set_name}", cases, ours(2))
        sides[f"r1 accuracy, 1 worker, {set_name}"] = contender(f"r1 1w {set_name}", cases, ours(1))
        sides[f"TRL accuracy_reward, {set_name}"] = contender(f"trl {set_name}", cases, run_trl)
        sides[f"serial math-verify loop, {set_name}"] = contender(f"serial {set_name}", cases, run_serial)
    cost = _timing.alternate(sides, args.reps, unit="s/sample")

    # --- the figures
    print(f"\nsamples/s (median, min-max over {args.reps} reps; deadline {args.deadline:g} s)")
    for name, c in cost.items():
        print(f"  {name:48s} {_timing.spread([1 / x for x in c], '{:.0f}')}")
    for set_name in sets:
        print(f"\n{set_name}:")
        for w in (2, 1):
            mine = cost[f"r1 accuracy, {w} worker{'s' * (w > 1)}, {set_name}"]
            for base in ("TRL accuracy_reward", "serial math-verify loop"):
                r = _timing.ratios(cost[f"{base}, {set_name}"], mine)
                print(f"  r1 accuracy ({w} worker{'s' * (w > 1)}) / {base:24s} {_timing.spread(r, suffix='x')}")
    bases = ("TRL accuracy_reward", "serial math-verify loop")
    strongest = min(bases, key=lambda b: _timing.median(cost[f"{b}, ordinary"]))
    head = _timing.ratios(cost[f"{strongest}, ordinary"], cost["r1 accuracy, 2 workers, ordinary"])
    print(f"\nheadline: r1 accuracy (2 workers) / {strongest} (the fastest baseline), ordinary completions: "
          f"{_timing.spread(head, suffix='x')}")
    stats = fns[2].stats
    print(f"r1 accuracy, 2 workers, all calls: fast path {stats['fast']}, 0 at once (hopeless) "
          f"{stats['too_deep'] + stats['too_large']}, math-verify {stats['verified']}, timeouts {stats['timeout']}, "
          f"errors {stats['error']}; slowest sample {stats['max_seconds']:.2f} s with a {args.deadline:g} s deadline "
          f"(target <= {args.deadline + 1:g} s)")

    refs, comps = [c[0] for c in mixed], [c[1] for c in mixed]
    mine, trl, serial = (verdicts[f"{k} +pathological"] for k in ("r1 2w", "trl", "serial"))
    n = len(mixed)
    print(f"mean reward on the second set: r1 {sum(mine) / n:.4f}, TRL {sum(x or 0 for x in trl) / n:.4f} "
          f"({sum(x is None for x in trl)} None: reference not parsed), serial {sum(serial) / n:.4f}")
    for other, theirs in (("TRL accuracy_reward", trl), ("the serial loop", serial)):
        differ = Counter(f"{answer_kind(r, c)}: r1 {o:g}, {v}" for r, c, o, v in zip(refs, comps, mine, theirs)
                         if o != (v or 0.0))
        agree = sum(o == (v or 0.0) for o, v in zip(mine, theirs)) / n
        print(f"agreement with {other}: {agree:.2%}; differing: "
              + (", ".join(f"{k} x{m}" for k, m in differ.most_common()) or "none"))
    if args.no_check:
        return

    # --- the shortcuts against math-verify itself (untimed) ---
    pool = verify.get_pool(2)
    decided = []  # (reference, answer, mode, shortcut's verdict, which shortcut)
    for ref, comp in zip(refs, comps):
        pred, where = find_answer(comp)
        if pred is None:
            continue
        quick = quick_verdict(ref, pred)
        why = None if quick is not None else hopeless(ref, pred, args.deadline)
        if quick is not None or why is not None:
            decided.append((ref, pred, "expr" if where == "boxed" else "tag", quick or 0.0, why or "quick_verdict"))
    decided = list({d[:3]: d for d in decided}.values())
    results = pool.run([d[:3] for d in decided], deadline=args.deadline)
    by = Counter(d[4] for d in decided)
    wrong = Counter(d[4] for d, (ok, status, _) in zip(decided, results) if status == verify.OK and float(ok) != d[3])
    timeouts = Counter(d[4] for d, (_, status, _) in zip(decided, results) if status == verify.TIMEOUT)
    print(f"shortcuts checked against math-verify (deadline {args.deadline:g} s): "
          + ", ".join(f"{k}: {m} answers, {wrong[k]} decided differently, {timeouts[k]} math-verify timeouts"
                      for k, m in by.items()))


if __name__ == "__main__":
    main()
