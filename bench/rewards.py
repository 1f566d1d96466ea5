"""Samples/s of the `accuracy` reward against a plain serial loop of math-verify calls, on the
same >= 10k mixed completions in one run (target: >= 1.8x on 2 cores, and no sample over its
deadline + 1 s).

    .venv/bin/python bench/rewards.py [--n 10000] [--pathological 24] [--workers 2] [--deadline 5] [--slices 4]

The completions mimic GSM8K and MATH-500 answers (integers written with commas, units, $ or
.0; fractions vs decimals, roots, intervals, sets, tuples, polynomials; right and wrong; some
with no \\boxed{} but "the final answer is ..."), every (reference, answer) pair distinct so
no cache helps, plus pathological ones: 9^{9^{9^9}}-style towers, 50,000-character outputs,
50,000-character answers, deeply nested \\frac / parentheses / \\sqrt.

- ours: `get_reward("accuracy")` called as TRL calls it, 256 completions a call; the pool is
  started before timing (its startup is printed on its own). Answers math-verify cannot call
  equal within the deadline (math.py's hopeless(): towers and iterated factorials against a
  number, bare groups nested 60+ deep) score 0 at once; `--pathological 0` measures the ordinary
  completions alone.
- serial: for each sample `verify(parse(reference), parse(completion))` in the main thread
  with math-verify's defaults (its own 5 s SIGALRM timeouts), as a plain reward loop does.
The data is cut into slices and the two alternate slice by slice, so a machine shared with
other jobs loads both alike; the load average and the CPU seconds each used are printed (with
the kernel's autogroup scheduling, all processes of one session share one session's slice of
a busy machine: there the workers cannot get more CPU than the serial loop, and the ratio
shows only the work saved). No assertion: this prints numbers.

Then two agreement figures: with the serial loop (plain math-verify: its default extraction over
the whole completion, so several boxes, `1 000`, `-2 \\le x < 5` or a hedge read differently
there; the differing pairs are counted by kind), and the check that the reward's shortcuts
(quick_verdict, hopeless) never decide differently from math-verify as the reward runs it
(verify.math_equal, same deadline), untimed; `--no-check` skips it.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import time
from collections import Counter

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


# --- the two contenders ----------------------------------------------------------------------------------


def cpu_seconds(pool) -> float:
    """CPU time of this process, its reaped children (killed workers) and the live workers."""
    import resource

    total = time.process_time() + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    for w in pool.workers:
        try:
            with open(f"/proc/{w.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_ours(fn, refs, comps, batch=256) -> tuple[float, list]:
    t = time.monotonic()
    out = []
    for s in range(0, len(comps), batch):
        out += fn([""] * len(comps[s:s + batch]), comps[s:s + batch], answer=refs[s:s + batch])
    return time.monotonic() - t, out


def run_serial(refs, comps) -> tuple[float, list, float]:
    from math_verify import parse, verify

    t, out, worst = time.monotonic(), [], 0.0
    for ref, comp in zip(refs, comps):
        t0 = time.monotonic()
        ok = verify(parse(f"${ref}$"), parse(comp))
        worst = max(worst, time.monotonic() - t0)
        out.append(1.0 if ok else 0.0)
    return time.monotonic() - t, out, worst


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
    ap.add_argument("--n", type=int, default=10_000, help="completions in all (pathological ones included)")
    ap.add_argument("--pathological", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=5.0, help="seconds per sample (math-verify's own default is 5)")
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip checking the shortcuts against math-verify")
    args = ap.parse_args()
    for name in ("math_verify", "latex2sympy2_extended"):  # every failed parse logs the whole text
        logging.getLogger(name).setLevel(logging.CRITICAL)

    from r1cli.rewards import get_reward, verify
    from r1cli.rewards.math import clear_memo, hopeless, quick_verdict
    from r1cli.templates import find_answer

    rng = random.Random(args.seed)
    cases = [normal_case(rng, i) for i in range(args.n - args.pathological)] + pathological_cases(args.pathological)
    rng.shuffle(cases)
    refs, comps = [c[0] for c in cases], [c[1] for c in cases]
    print(f"{len(cases)} completions ({args.pathological} pathological), {len({*cases})} distinct; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)

    t = time.monotonic()
    fn = get_reward("accuracy", workers=args.workers, timeout=args.deadline)
    fn([""], [BOX.format(cot="warm", ans="\\sqrt{4}")], answer=["2"])  # not the fast path: starts the pool
    print(f"pool start ({args.workers} workers, to the first verdict): {time.monotonic() - t:.2f} s", flush=True)

    size = -(-len(cases) // args.slices)
    pool = verify.get_pool(args.workers)
    t_ours = t_serial = worst_serial = cpu_ours = cpu_serial = 0.0
    ours, serial = [None] * len(cases), [None] * len(cases)
    for k in range(args.slices):
        lo, hi = k * size, min(len(cases), (k + 1) * size)
        order = ("ours", "serial") if k % 2 == 0 else ("serial", "ours")
        for who in order:
            c0 = cpu_seconds(pool)
            if who == "ours":
                clear_memo()
                dt, out = run_ours(fn, refs[lo:hi], comps[lo:hi])
                t_ours += dt
                cpu_ours += cpu_seconds(pool) - c0  # (a worker killed mid-slice loses its last CPU second or so)
                ours[lo:hi] = out
            else:
                dt, out, worst = run_serial(refs[lo:hi], comps[lo:hi])
                t_serial += dt
                cpu_serial += cpu_seconds(pool) - c0
                worst_serial = max(worst_serial, worst)
                serial[lo:hi] = out
        print(f"  slice {k + 1}/{args.slices}: ours {t_ours:.1f} s, serial {t_serial:.1f} s so far "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)

    n = len(cases)
    agree = sum(a == b for a, b in zip(ours, serial)) / n
    stats = fn.stats
    print(f"\naccuracy reward: {n / t_ours:8.1f} samples/s  ({t_ours:.1f} s; fast path {stats['fast']}, "
          f"no reference needs (0 at once) {stats['too_deep'] + stats['too_large']}, "
          f"math-verify {stats['verified']}, timeouts {stats['timeout']}, errors {stats['error']}, "
          f"worker restarts {verify.get_pool(args.workers).restarts})")
    print(f"serial loop:     {n / t_serial:8.1f} samples/s  ({t_serial:.1f} s)")
    print(f"ratio: {t_serial / t_ours:.2f}x   (target >= 1.8x on 2 cores)")
    print(f"CPU seconds: ours {cpu_ours:.1f} (this process + workers), serial {cpu_serial:.1f}; "
          f"ours ran at {cpu_ours / t_ours:.2f} cores, serial at {cpu_serial / t_serial:.2f}")
    print(f"max per-sample latency: {stats['max_seconds']:.2f} s with a {args.deadline:g} s deadline "
          f"(target <= {args.deadline + 1:g} s); serial loop's slowest sample {worst_serial:.2f} s")
    print(f"mean reward: ours {sum(ours) / n:.4f}, serial {sum(serial) / n:.4f}")
    differ = Counter(f"{answer_kind(r, c)}: ours {o:g}, plain {v:g}" for r, c, o, v in zip(refs, comps, ours, serial) if o != v)
    print(f"agreement with plain math-verify (the serial loop): {agree:.2%} of samples; differing: "
          + (", ".join(f"{k} x{m}" for k, m in differ.most_common()) or "none"))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}", flush=True)
    if args.no_check:
        return

    # --- the shortcuts against math-verify itself (untimed) ---
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
