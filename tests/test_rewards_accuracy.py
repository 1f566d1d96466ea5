"""The `accuracy` reward: math-verify equivalence (GSM8K / MATH-500 style answers), routing by
domain, answer extraction, and the worker pool's hard deadline (timeouts, crashes, threads)."""

import os
import threading
import time

import pytest

from r1cli.rewards import get_reward, verify
from r1cli.rewards.math import clear_memo, hopeless, normalize, quick_verdict

# (reference, what the model put in \boxed{}): must score 1
EQUIVALENT = [
    # GSM8K-style references (integers) against how models write them
    ("18", "18"), ("18", "18.0"), ("18", "18.00"), ("18", "\\$18"), ("18", "18 dollars"), ("18", "\\text{18}"),
    ("18", "18\\text{ dollars}"), ("7425000", "7,425,000"), ("7425000", "7{,}425{,}000"), ("1000", "1,000"),
    ("1000", "1000."), ("-3", "-3"), ("-3", "- 3"), ("0", "0"), ("5", "05"), ("3", "x = 3"), ("64", "2^6"),
    ("10", "\\frac{20}{2}"), ("25", "25\\%"), ("70", "70^\\circ"), ("70", "70^{\\circ}"), ("48", "48 \\text{ apples}"),
    ("12", "\\mathbf{12}"), ("12", "\\textbf{12}"), ("1600", "1.6 \\times 10^3"), ("0.25", "\\frac{1}{4}"),
    ("5", "5 cm"), ("3", "3 hours."), ("1,234", "1234"), ("2.50", "2.5"),
    # MATH-500-style references
    ("\\frac{1}{2}", "0.5"), ("0.5", "\\frac12"), ("\\frac12", "1/2"), ("\\dfrac{3}{4}", "\\frac{3}{4}"),
    ("\\tfrac{3}{4}", "0.75"), ("-\\frac{1}{2}", "-0.5"), ("\\frac{-1}{2}", "-\\frac{1}{2}"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"), ("3\\sqrt{13}", "\\sqrt{117}"),
    ("2\\sqrt{2}", "\\sqrt{8}"), ("\\pi", "\\pi"), ("2\\pi", "2 \\pi"), ("\\frac{\\pi}{2}", "\\pi/2"), ("6 - 5i", "6-5i"),
    ("3+2i", "2i+3"), ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})"), ("(1, -2)", "(1,-2)"),
    ("[-2, 7]", "[-2,7]"), ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,0)\\cup(0,\\infty)"), ("[0, \\infty)", "[0,\\infty)"),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}"), ("1, 2", "2, 1"), ("1,-2", "-2, 1"), ("\\{1,2\\}", "1,2"), ("x \\in [-2,7]", "[-2,7]"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"), ("p - q", "p-q"),
    ("x^2+2x+1", "(x+1)^2"), ("y = 2x + 3", "2x+3"), ("\\text{Evelyn}", "Evelyn"), ("\\text{(C)}", "C"), ("(C)", "\\text{C}"),
    ("\\text{yes}", "yes"), ("Yes", "yes"), ("\\infty", "\\infty"), ("2^{10}", "1024"), ("10!", "3628800"),
    ("\\binom{5}{2}", "10"), ("\\$32,348", "32348"), ("5\\text{ cm}", "5"), ("10\\%", "10"), ("0.1", "10\\%"),
    ("\\frac{14}{3}", "4\\frac{2}{3}"), ("90^\\circ", "90"), ("1.5", "\\frac{3}{2}"), ("\\frac{9}{4}", "2.25"),
]

# must score 0
DIFFERENT = [
    ("18", "17"), ("18", "-18"), ("18", "180"), ("18", "1.8"), ("7425000", "742500"), ("1000", "1,001"),
    ("0", "1"), ("5", "15"), ("3", "x = 4"), ("64", "2^7"), ("25", "26\\%"), ("0.25", "\\frac{1}{3}"),
    ("\\frac{1}{2}", "0.51"), ("\\frac12", "2"), ("-\\frac{1}{2}", "\\frac{1}{2}"), ("\\sqrt{2}", "2"), ("\\pi", "3.14"),
    ("2\\pi", "\\pi"), ("6 - 5i", "6+5i"), ("(1, -2)", "(-2, 1)"), ("[-2, 7]", "(-2, 7)"), ("(1,2]", "[1,2]"),
    ("[0, \\infty)", "(0,\\infty)"), ("\\{1, 2, 3\\}", "\\{1, 2\\}"), ("1, 2", "1, 3"), ("p - q", "q - p"),
    ("x^2+2x+1", "(x-1)^2"), ("\\text{Evelyn}", "Emily"), ("\\text{(C)}", "D"), ("\\frac{1}{3}", "0.333"),
    ("10", "1e3"), ("2^{10}", "1000"), ("\\frac{14}{3}", "\\frac{3}{14}"), ("3\\sqrt{13}", "\\sqrt{39}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}"), ("12", "twelve"),
    ("4", "\\text{four}"), ("100", "10"), ("0.5", "5"), ("1/2", "1/3"), ("72", "27"), ("5", "5.5"),
    ("1000000", "1000001"), ("3.75", "3.57"), ("-7", "7"), ("\\frac{3}{4}", "\\frac{4}{3}"), ("\\sqrt{3}", "\\sqrt{2}"),
    ("2\\sqrt{5}", "\\sqrt{10}"), ("(3, 4)", "(3, 5)"), ("[1, 5]", "[1, 6]"), ("x^2", "x^3"), ("a+b", "a-b"),
    ("\\$18", "19"), ("50\\%", "0.05"), ("42", ""), ("42", "\\text{the answer}"), ("\\{4, 5\\}", "\\{4, 5, 6\\}"),
    ("90^\\circ", "45"), ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}"), ("3+2i", "3-2i"), ("0", "0.001"),
]


def boxed(p):
    return f"<think>\nLet me work it out.\n</think>\nSo the final answer is $\\boxed{{{p}}}$."


HANG_S = 60  # a bound on a hang, not a timing: every guarded call below returns in seconds


def guarded(fn, *args, **kw):
    """fn(*args, **kw) in a thread joined with a hang guard, so a stuck pool fails the test instead of
    hanging the suite; no assertion depends on how long the call took."""
    got: dict = {}

    def call():
        try:
            got["out"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 (re-raised in the test's thread)
            got["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(HANG_S)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} hung"
    if "error" in got:
        raise got["error"]
    return got["out"]


@pytest.fixture(scope="module")
def accuracy():
    return get_reward("accuracy")


def test_equivalent_and_different_answers(accuracy):
    assert len(EQUIVALENT) >= 60 and len(DIFFERENT) >= 60
    clear_memo()
    cases = EQUIVALENT + DIFFERENT
    out = accuracy([""] * len(cases), [boxed(p) for _, p in cases], answer=[g for g, _ in cases])
    wrong = [(g, p, o) for (g, p), o, want in zip(cases, out, [1.0] * len(EQUIVALENT) + [0.0] * len(DIFFERENT)) if o != want]
    assert wrong == []


def test_answer_extraction(accuracy):
    comps = [
        "<think>\nx\n</think>\nFirst \\boxed{3}, then correcting: \\boxed{42}",   # the last box wins
        "<think>\nmaybe \\boxed{42}\n</think>\nThe answer is \\boxed{41}",         # the summary's box, not the CoT's
        "<think> 6*7 </think> <answer> 42 </answer>",                            # r1zero answer tag
        "<think> 6*7 </think> <answer> \\boxed{42} </answer>",
        "<think>\nx\n</think>\nThe final answer is 42.",                          # no box: anchored answer
        "<think>\nx\n</think>\nI am not sure, maybe 42 or 41 or 40",              # no box, no anchor
        "",
        [{"role": "assistant", "content": "<think>\nx\n</think>\n\\boxed{42}"}],  # chat-message completion
    ]
    out = accuracy([""] * len(comps), comps, answer=["42"] * len(comps))
    assert out == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0]


def test_prefilled_think():
    acc = get_reward("accuracy", prefilled_think=True)
    # the prompt ended with <think>: the completion starts inside the reasoning
    out = acc(["", ""], ["try \\boxed{41}\n</think>\n\\boxed{42}", "only thinking \\boxed{42}"], answer=["42", "42"])
    # no </think> at all: the whole text is the summary (templates.split_completion, as without a pre-filled
    # tag), so its box is the answer; an unclosed CoT is the format reward's to score 0
    assert out == [1.0, 1.0]
    assert get_reward("format", prefilled_think=True)([""], ["only thinking \\boxed{42}"]) == [0.0]


def test_routing_by_domain_and_empty_answer(accuracy):
    comps = [boxed("42")] * 7
    out = accuracy([""] * 7, comps, answer=["42", "42", "42", "42", "42", "", None],
                   domain=["math", "stem", "logic", None, "general", "math", "math"])
    assert out[:4] == [1.0] * 4           # a row without domain is not excluded by domain
    assert out[4:] == [None, None, None]  # general; empty / missing reference
    code = accuracy([""], [boxed("42")], answer=["42"], domain=["code"])
    assert code == [None]                 # the code reward judges code rows


def test_trl_keyword_arguments_are_accepted(accuracy):
    seen = {}
    out = accuracy(prompts=[[{"role": "user", "content": "6*7?"}]], completions=[[{"role": "assistant", "content": boxed("42")}]],
                   completion_ids=[[1, 2, 3]], answer=["42"], trainer_state=object(), log_extra=lambda c, v: None,
                   log_metric=lambda k, v: seen.setdefault(k, v), environments=None)
    assert out == [1.0]
    assert seen == {"rewards/accuracy/timeouts": 0.0}
    assert accuracy.__name__ == "accuracy" and accuracy.required_columns == ("answer",)


def test_a_groups_repeated_answer_is_verified_once():
    acc = get_reward("accuracy")
    clear_memo()
    comps = [boxed("\\sqrt{4}")] * 8 + [boxed("\\sqrt{9}")] * 8  # G=16 completions, two distinct answers
    assert acc([""] * 16, comps, answer=["2"] * 16) == [1.0] * 8 + [0.0] * 8
    assert acc.stats["verified"] == 2 and acc.stats["memo"] == 14
    assert acc([""], [boxed("\\sqrt{4}")], answer=["2"]) == [1.0]  # and remembered for length/cosine
    assert acc.stats["verified"] == 2


def test_normalize_and_quick_verdict():
    assert normalize(" $7,425,000.$ ") == "7425000"
    assert normalize("\\left( 1, 2 \\right)") == "(1,2)"
    assert normalize("\\dfrac{1}{2}") == normalize("\\frac{1}{2}")
    assert normalize("1 2") == "1 2"  # two numbers stay two numbers
    assert quick_verdict("18", "018") == 1.0
    assert quick_verdict("18", "19") == 0.0
    assert quick_verdict("0.50", ".5") == 1.0
    assert quick_verdict("0.5", "\\frac12") == 1.0
    assert quick_verdict("-\\frac{1}{2}", "\\frac{-1}{2}") == 1.0
    assert quick_verdict("\\frac{3}{4}", "\\frac{4}{3}") == 0.0  # two exact rationals: decided here
    assert quick_verdict("18", "\\$18") == 1.0 and quick_verdict("25", "25\\%") == 1.0
    assert quick_verdict("0.5", "0.6") == 0.0        # decimals far apart: past math-verify's rounding
    assert quick_verdict("0.5", "0.50001") is None   # close decimals: math-verify's rounding decides
    assert quick_verdict("\\sqrt{2}", "1.41") is None
    assert quick_verdict("\\frac{1}{0}", "1") is None
    assert quick_verdict("9" * 5000, "9" * 5000) == 1.0  # no int() of huge strings


def test_answers_no_reference_needs_score_zero_at_once(monkeypatch):
    """hopeless(): towers and iterated factorials against a number, and deeply nested bare groups,
    are 0 without math-verify (each ran into the deadline there), counted by reason; ordinary
    ones, and long answers math-verify decides, are verified."""
    acc = get_reward("accuracy", timeout=5.0)
    clear_memo()
    cases = [("5", "9^{9^{9^9}}", "too_large"), ("3", "10!!!!", "too_large"), ("3", "7^{9999999}", "too_large"),
             ("3", "(" * 500 + "1" + ")" * 500, "too_deep"), ("3", "{" * 30 + "2" + "}" * 30, "too_deep")]
    asked = []  # every call for the worker pool: none means no deadline could be waited for
    real_pool = verify.get_pool
    monkeypatch.setattr(verify, "get_pool", lambda *a, **kw: asked.append(a) or real_pool(*a, **kw))
    out = guarded(acc, [""] * len(cases), [boxed(p) for _, p, _ in cases], answer=[g for g, _, _ in cases])
    assert out == [0.0] * len(cases)
    assert asked == [] and acc.stats["timeout"] == 0  # scored in this process, no worker asked or killed
    assert {r: acc.stats[r] for r in ("too_large", "too_deep")} == {"too_large": 3, "too_deep": 2}
    assert acc.stats["verified"] == 0
    # what a reference can look like is still verified: powers, factorials, nested fractions, long sums
    ok = [("1024", "2^{10}"), ("1267650600228229401496703205376", "2^{100}"), ("120", "5!"),
          ("\\frac{1}{4}", "\\frac{\\frac{1}{2}}{2}"), ("x^2+2x+1", "(x+1)^2"), ("511", "1+" * 510 + "1")]
    patient = get_reward("accuracy", timeout=60.0)  # a loaded machine must not turn a verdict into a timeout
    assert patient([""] * len(ok), [boxed(p) for _, p in ok], answer=[g for g, _ in ok]) == [1.0] * len(ok)
    long_ref = "+".join(f"{i}x^{{{i}}}" for i in range(1, 120))  # a long reference allows a long answer
    assert hopeless(long_ref, long_ref.replace("+", " + ")) is None


# --- the pool: deadline, crash, threads, reuse ----------------------------------------------------------


def test_timeout_scores_zero_is_counted_and_bounded():
    acc = get_reward("accuracy", timeout=1.0)
    clear_memo()
    # 19 nested parentheses pass hopeless() (MAX_DEPTH 60) and take math-verify ~2 s
    slow = ["(" * 19 + str(d) + ")" * 19 for d in (1, 2)]
    comps = [boxed(slow[0]), boxed("42"), boxed("\\frac{84}{2}"), boxed(slow[1])]
    pool = verify.get_pool()
    restarts = pool.restarts
    out = guarded(acc, [""] * 4, comps, answer=["5", "42", "42", "3"])
    assert out == [0.0, 1.0, 1.0, 0.0]
    assert acc.stats["timeout"] == 2 and acc.stats["verified"] == 2  # the other two are decided without a worker
    # the deadline was enforced by killing: each timed-out sample's worker was killed and replaced
    assert verify.get_pool() is pool and pool.restarts - restarts == 2
    # the pool replaced the killed workers and still answers
    assert guarded(acc, [""], [boxed("\\frac{1}{2}")], answer=["0.5"]) == [1.0]


def test_pool_deadline_is_per_sample_and_reports_latency():
    pool = verify.get_pool()
    tasks = [("5", "9^{9^{9^9}}", "expr")] + [("1/2", f"\\frac{{{i}}}{{{2 * i}}}", "expr") for i in range(1, 40)]
    restarts = pool.restarts
    res = guarded(pool.run, tasks, deadline=1.0)
    assert len(res) == len(tasks) and res[0][1] == verify.TIMEOUT and res[0][0] is False
    # per sample: the tower's deadline ran out, the 39 others behind it were still verified
    assert all(ok and status == verify.OK for ok, status, _ in res[1:])
    assert pool.restarts - restarts == 1  # only the tower's worker was killed
    # each sample reports its own latency; the timed-out one the whole deadline it was given
    assert all(isinstance(sec, float) and sec >= 0 for _, _, sec in res) and res[0][2] >= 1.0


def test_crashed_worker_is_replaced():
    pool = verify.get_pool()
    before = pool.restarts
    pid = pool.workers[0].proc.pid
    os.kill(pid, 9)  # e.g. the OOM killer
    time.sleep(0.2)
    res = pool.run([("2", "\\sqrt{4}", "expr")] * 6, deadline=5.0)
    assert [r[0] for r in res].count(True) >= 5  # the sample sent to the dead worker may be an error
    assert all(r[1] in (verify.OK, verify.ERROR) for r in res)
    assert pool.restarts > before and pool.workers[0].proc.pid != pid


def test_works_outside_the_main_thread(accuracy):
    """math-verify's own SIGALRM timeout raises in a thread; our workers run it in their main thread."""
    clear_memo()
    result = {}

    def job():
        result["out"] = accuracy([""] * 2, [boxed("\\frac{1}{2}"), boxed("(1,2]")], answer=["0.5", "[1,2]"])

    t = threading.Thread(target=job)
    t.start()
    t.join(60)
    assert result["out"] == [1.0, 0.0]


def test_pool_is_reused_and_shut_down():
    pool = verify.get_pool(2)
    pids = [w.proc.pid for w in pool.workers]
    assert verify.get_pool(2) is pool
    get_reward("accuracy", workers=2)([""], [boxed("\\frac{3}{6}")], answer=["0.5"])
    assert [w.proc.pid for w in pool.workers] == pids
    procs = [w.proc for w in pool.workers]
    verify.shutdown()
    assert all(p.poll() is not None for p in procs)  # no worker left behind
    assert verify.get_pool(2) is not pool             # a fresh pool on next use


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("in_thread", [False, True])
def test_workers_die_with_a_killed_parent(in_thread):
    """kill -9 of the trainer (or a pool started from a helper thread) leaves no worker behind."""
    import subprocess
    import sys

    code = f"""
import threading, time
from r1cli.rewards import verify
def start():
    pool = verify.get_pool(2)
    pool.run([("1", "\\\\sqrt{{1}}", "expr")])
    print(*[w.proc.pid for w in pool.workers], flush=True)
if {in_thread}:
    t = threading.Thread(target=start); t.start(); t.join()
else:
    start()
verify.get_pool(2).run([("2", "\\\\sqrt{{4}}", "expr")])  # still served after the starting thread ended
print("served", flush=True)
time.sleep(120)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert proc.stdout.readline().strip() == "served"
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + HANG_S  # a hang guard: the workers die with the parent, not within a time
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
