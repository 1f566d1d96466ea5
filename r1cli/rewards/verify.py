"""math-verify in a pool of worker processes with a hard per-sample deadline.

Why not call math_verify.verify in the trainer: its timeout is SIGALRM, which only works in
the main thread of the main interpreter (TRL's async rewards, Ray and verl workers run
elsewhere: rewards silently become 0 or training hangs), and a signal handler only runs
between bytecodes, so C code that never returns to the interpreter is not interrupted. So each
sample goes to a worker process; the parent waits at most `deadline` seconds for it, then kills
that worker (SIGKILL), starts a fresh one and scores the sample 0, counted as a timeout: a hard
bound whatever the worker is doing. math-verify's own alarms are switched off in the workers.

Cheap cases never get here (math.py: equal normalized strings, two exact rationals). Workers
are fresh interpreters (`python -m r1cli.rewards.verify`, see _Worker for why not
multiprocessing), take samples in small chunks and answer each one as it is done. The pool is
created on first use, reused across calls (a worker parses a shared reference once) and shut
down at exit; a worker also exits when its parent dies.

    pool = get_pool(workers=2)
    results = pool.run([("\\frac12", "0.5", "expr"), ...], deadline=5.0)  # [(ok, status, seconds)]
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from multiprocessing.connection import wait

OK, TIMEOUT, ERROR = "ok", "timeout", "error"
DEFAULT_DEADLINE = 5.0  # seconds per sample, math-verify's own default per operation
DEFAULT_MEMORY_MB = 4096  # address-space cap per worker: sympy blowing up raises MemoryError, not OOM


# --- the verification itself (runs in a worker) ------------------------------------------------


def _configs():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # for answers given without \boxed{}: only after an anchor such as "the final answer is"
    return [LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=0),
            ExprExtractionConfig(try_extract_without_anchor=False)]


_PLAIN_UNITS = re.compile(r"([-+]?\s*[\d,]*\.?\d+)\s+([A-Za-z]{2,}(?:\s+[A-Za-z]+)*)\.?")
_MATH_WORDS = frozenset("pi sqrt sin cos tan cot sec csc log ln lg exp mod and or".split())
_DOLLARS = re.compile(r"^\$+|(?<!\\)\$+$")
# math-verify's plain-number formats (its ExprExtractionConfig reader), as a whole answer:
# 1,000 / 1 000 / 1,000.5 (thousands), 1000,99 / 1.22 (decimal point or comma), .5, 7, and a percent
NUMBER_FORMAT = re.compile(r"-?(?:[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?|\d+[.,]\d+|\.\d+|\d+)"
                           r"(?:\s*(?:%|[Pp]ercent(?:age)?|[Pp]ct))?")
DIGIT_SPACE = re.compile(r"(?<=\d)(?:\\[,;: !]|~|\\thinspace\s*)(?=\d)")  # 1\,000 (LaTeX's thin space)
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # a word that is no LaTeX command: "The answer is 9"


def strip_plain_units(s: str) -> str:
    """"18 dollars" -> "18": a number followed by plain words (LaTeX would read them as a
    product of variables; \\text{dollars} math-verify already drops)."""
    m = _PLAIN_UNITS.fullmatch(s.strip())
    if m and not any(w.lower() in _MATH_WORDS for w in m.group(2).split()):
        return m.group(1)
    return s


def as_number_format(s: str) -> str | None:
    """`s` as one of math-verify's plain-number formats (NUMBER_FORMAT), else None. LaTeX's
    spacing between digits (1\\,000, 1{,}000) and \\% count as the plain characters."""
    t = DIGIT_SPACE.sub(" ", s.strip()).replace("{,}", ",").replace("\\%", "%").removeprefix("\\$").strip()
    return t if len(t) <= 100 and NUMBER_FORMAT.fullmatch(t) else None


def _bare(answer: str) -> str:
    """An answer without plain-word units, $ delimiters and a sentence's full stop."""
    s = _DOLLARS.sub("", strip_plain_units(answer).strip()).strip()
    return s[:-1].rstrip() if s.endswith(".") and not s.endswith("\\.") else s


_GROUPED = re.compile(r"-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")


def number_value(answer: str) -> Fraction | None:
    """The exact value math-verify's number reader gives an answer written with thousands
    separators (1 000, 1,000.5) or a decimal comma (1000,99), else None: math.quick_verdict's
    way to say "equal" without a worker (readings() has these readings among others)."""
    t = as_number_format(_bare(answer)) if len(answer) <= 100 else None
    if t is None:
        return None
    if _GROUPED.fullmatch(t):
        return Fraction(Decimal(t.replace(",", "").replace(" ", "")))
    if _DECIMAL_COMMA.fullmatch(t):
        return Fraction(Decimal(t.replace(",", ".")))
    return None


def readings(answer: str) -> list:
    """The values an answer (a box's content, a reference) can mean, as math-verify objects.

    The whole text is one LaTeX formula, read by math-verify's LaTeX reader (its normalization,
    then latex2sympy): nothing is searched for inside it, so `Answer \\( 9 \\)` is not 9. A text
    that is a plain number in one of math-verify's formats is also read by its number reader:
    `1 000` is 1000 (and only that: LaTeX would read 1*000), `1000,99` is 1000.99 or the pair
    {1000, 99}, `1,000` is 1000 in both. verify() accepts a match of any reading."""
    from latex2sympy2_extended.latex2sympy2 import normalize_latex
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
    from math_verify.parser import parse_latex_cached

    s = _bare(answer)
    if not s:
        return []
    out = []
    number = as_number_format(s)
    if number is None or " " not in re.match(r"-?[\d ,.]*", number).group().strip():
        try:
            out.append(parse_latex_cached(normalize_latex(s, LatexExtractionConfig().normalization_config)))
        except Exception:  # noqa: BLE001, S110 (latex2sympy raises a bare Exception for what is no formula)
            pass
    if number is not None:
        out += [v for v in parse(number, [ExprExtractionConfig()], fallback_mode="no_fallback", parsing_timeout=None)
                if not any(v == o for o in out)]
    return out


@lru_cache(maxsize=4096)
def _gold(gold: str) -> list:
    """A reference's readings; a reference that is no formula (prose, boxes) goes through
    math-verify's own extraction. G completions share one reference: read it once."""
    from math_verify import parse

    if "\\boxed" in gold or "\\fbox" in gold:  # a reference written as a solution: math-verify's own box rule
        return parse(gold, parsing_timeout=None)
    return readings(gold) or parse(gold, parsing_timeout=None)


def math_equal(gold: str, pred: str, mode: str = "expr") -> bool:
    """math-verify's verdict on a model answer against a reference (strict: variables matter,
    sets are not tuples; an inequality equals the interval it describes, -2 <= x <= 7 = [-2, 7]).
    mode "expr": `pred` is the answer (a box's content), one formula; "tag": an `<answer>` tag's
    content, a formula, or words that math-verify searches for the answer; "text": a summary with
    no answer given (anchored extraction only: "the final answer is 42")."""
    from math_verify import parse, verify

    g = _gold(gold)
    if not g:
        return False
    if mode == "text":
        p = parse(pred, extraction_config=_configs(), parsing_timeout=None)
    elif mode == "tag" and _PROSE.search(pred):  # the tag is the anchor: math-verify finds the answer in it
        p = parse(pred, parsing_timeout=None) or readings(pred)
    else:
        p = readings(pred) or (parse(pred, parsing_timeout=None) if mode == "tag" else [])
    return bool(p) and verify(g, p, allow_set_relation_comp=True, timeout_seconds=None)


def _die_with_parent(by_main_thread: bool) -> None:
    """Exit when the parent dies, even if it is killed -9 while we are deep in sympy."""
    import signal

    parent = os.getppid()
    if by_main_thread:  # PR_SET_PDEATHSIG fires when the creating *thread* exits: only safe for the main one
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):
            pass

    def watch():  # and a portable fallback: the parent changed (we were re-parented)
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(conn, memory_mb: int, by_main_thread: bool = True) -> None:
    import resource
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool
    _die_with_parent(by_main_thread)

    if memory_mb:
        limit = memory_mb << 20
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass
    for name in ("math_verify", "latex2sympy2_extended"):  # they log every failed parse at WARNING
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import math_verify.grader
    import math_verify.parser

    math_verify.parser.TIMEOUT_WARNING_SHOWN = math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    math_equal("1", "\\frac{2}{2}")  # warm up the LaTeX grammar before taking real samples, and the
    math_equal("x \\in [0, 1]", "0 \\le x \\le 1")  # sympy modules an inequality's set needs (seconds, once)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()  # a list of (gold, pred, mode), or None to stop
        except (EOFError, OSError):  # the parent is gone
            return
        if task is None:
            return
        for gold, pred, mode in task:
            t0 = time.monotonic()
            try:
                ok, status = bool(math_equal(gold, pred, mode)), OK
            except Exception:  # MemoryError, RecursionError, sympy's own errors: not equal
                ok, status = False, ERROR
            conn.send((ok, status, t0, time.monotonic()))


# --- the pool (parent side) ----------------------------------------------------------------------


class _Worker:
    """`python -m r1cli.rewards.verify FD`: a fresh interpreter talking over a socket pair.

    Not multiprocessing's spawn/forkserver: both re-run the user's main script in every child
    (a training script without an `if __name__ == "__main__"` guard would start training again
    in each worker), and fork would copy torch's thread pools. A worker sends "ready" once
    math_verify is imported and warmed up (measured here: about 1 s of CPU), and dies with its
    parent (PR_SET_PDEATHSIG, else a watcher thread), so a kill -9 of the trainer leaves no
    worker spinning on sympy.
    """

    def __init__(self, memory_mb: int):
        self.conn, child = mp.Pipe()
        fd = child.fileno()
        main = int(threading.current_thread() is threading.main_thread())
        cmd = [sys.executable, "-m", "r1cli.rewards.verify", str(fd), str(memory_mb), str(main)]
        self.proc = subprocess.Popen(cmd, pass_fds=[fd], stdin=subprocess.DEVNULL, close_fds=True)
        child.close()
        self.ready = False
        self.queue: deque = deque()  # indices of the samples sent to it; the first is running
        self.started = 0.0  # when the running sample started

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.conn.close()


class VerifyPool:
    """Persistent worker processes; `run` verifies a batch with a hard deadline per sample."""

    def __init__(self, workers: int, memory_mb: int = DEFAULT_MEMORY_MB):
        self.size = max(1, int(workers))
        self.memory_mb = memory_mb
        self.workers = [_Worker(memory_mb) for _ in range(self.size)]
        self.lock = threading.Lock()
        self.restarts = 0
        self.start_failures = 0

    def run(self, tasks: list[tuple[str, str, str]], deadline: float = DEFAULT_DEADLINE) -> list[tuple[bool, str, float]]:
        """(is_equal, status, seconds) per task, in order; status ok | timeout | error.

        Tasks go out in small chunks and each result comes back on its own: the worker does not
        wait for the parent between samples (on a loaded machine every wake-up costs a time
        slice), and the parent still knows which sample is running and since when (CLOCK_MONOTONIC
        is shared by all processes), so the deadline stays per sample."""
        results: list = [None] * len(tasks)
        with self.lock:
            todo = deque(range(len(tasks)))
            while todo or any(w.queue for w in self.workers):
                idle = [w for w in self.workers if w.ready and not w.queue]
                for w in idle:
                    if not todo:
                        break
                    size = max(1, min(32, len(todo) // (4 * self.size)))
                    chunk = [todo.popleft() for _ in range(min(size, len(todo)))]
                    try:
                        w.conn.send([tasks[i] for i in chunk])
                    except OSError:  # died while idle: replace it, retry the samples
                        self._replace(w)
                        todo.extendleft(reversed(chunk))
                        continue
                    w.queue.extend(chunk)
                    w.started = time.monotonic()
                waiting = {w.conn: w for w in self.workers if w.queue or not w.ready}
                busy = [w for w in self.workers if w.queue]
                timeout = max(0.0, min(w.started for w in busy) + deadline - time.monotonic()) if busy else 60.0
                for conn in wait(list(waiting), timeout):
                    w = waiting[conn]
                    while True:  # drain every result already sent
                        try:
                            msg = conn.recv()
                        except (EOFError, OSError):  # crashed: a segfault in a C extension, or killed
                            if not w.ready:  # killed while starting; three in a row is a broken install
                                self.start_failures += 1
                                if self.start_failures >= 3:
                                    raise RuntimeError(f"math-verify workers keep exiting while starting (code "
                                                       f"{w.proc.poll()}): see their errors above") from None
                            if w.queue:
                                results[w.queue.popleft()] = (False, ERROR, time.monotonic() - w.started)
                            todo.extendleft(reversed(w.queue))
                            self._replace(w)
                            break
                        if msg == "ready":
                            w.ready, self.start_failures = True, 0
                        else:
                            ok, status, t0, t1 = msg
                            results[w.queue.popleft()] = (ok, status, t1 - t0)
                            w.started = t1  # the next sample of the chunk started when this one ended
                        if not w.queue or not conn.poll():
                            break
                now = time.monotonic()
                for w in busy:
                    if w.queue and now - w.started >= deadline:
                        results[w.queue.popleft()] = (False, TIMEOUT, now - w.started)
                        todo.extendleft(reversed(w.queue))
                        self._replace(w)
        return results

    def _replace(self, w: _Worker) -> None:
        """Kill `w` and start a fresh process in its place (it takes samples once ready)."""
        w.kill()
        fresh = _Worker(self.memory_mb)
        w.conn, w.proc, w.ready, w.queue = fresh.conn, fresh.proc, False, deque()
        self.restarts += 1

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            try:
                w.proc.wait(1)
            except subprocess.TimeoutExpired:
                pass
            w.kill()
        self.workers = []


# --- one pool per process -------------------------------------------------------------------------

_POOL: VerifyPool | None = None
_POOL_PID: int | None = None


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def get_pool(workers: int | None = None) -> VerifyPool:
    """The process-wide pool, (re)created with `workers` processes (None = the existing pool, or
    one worker per core up to 4)."""
    global _POOL, _POOL_PID
    if workers is None and _POOL is not None and _POOL_PID == os.getpid():
        return _POOL  # whatever size another reward asked for
    workers = default_workers() if workers is None else max(1, int(workers))
    if _POOL is not None and (_POOL_PID != os.getpid() or _POOL.size != workers):
        if _POOL_PID == os.getpid():
            _POOL.close()
        _POOL = None
    if _POOL is None:
        _POOL, _POOL_PID = VerifyPool(workers), os.getpid()
    return _POOL


def shutdown() -> None:
    global _POOL
    if _POOL is not None and _POOL_PID == os.getpid():
        _POOL.close()
    _POOL = None


atexit.register(shutdown)


if __name__ == "__main__":  # a worker: python -m r1cli.rewards.verify FD MEMORY_MB BY_MAIN_THREAD
    from multiprocessing.connection import Connection

    _worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]), sys.argv[3:4] != ["0"])
