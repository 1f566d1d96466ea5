"""The run's telemetry for every trainer stage: metrics.jsonl (one line per logging step, what
`r1 report` reads), a rich progress bar on a terminal and, when stdout is a file (a cluster log),
one plain line per logging step, as a transformers Trainer callback:

    r1 grpo step 20/400  loss 0.0123  reward 0.61  accuracy 0.42  tokens/s 1830  elapsed 3m05s  ETA 58m36s
"""

from __future__ import annotations

import math
import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from r1cli.artifacts import StageRun

console = Console(stderr=True)


def _nothing(*args, **kwargs) -> None:
    return None


class Callback:
    """A transformers TrainerCallback without importing transformers when this module loads (that
    takes seconds, and every check of a stage runs before it): the Trainer calls
    `callback.on_<event>(args, state, control, **kw)` for each event; the ones a subclass does not
    define do nothing, as in TrainerCallback."""

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return _nothing
        raise AttributeError(name)


# the plain line's columns: (label, metrics.jsonl keys, the first one present is shown)
LINE = (("loss", ("loss",)), ("reward", ("reward",)),
        ("accuracy", ("rewards/accuracy/mean", "accuracy", "mean_token_accuracy")), ("tokens/s", ("tokens_per_s",)))


class Telemetry(Callback):
    """Writes every log to OUT.partial/metrics.jsonl; draws a rich progress bar when stderr is a terminal,
    and prints a plain line per log when stdout is not one (both when only stdout goes to a file)."""

    def __init__(self, run: StageRun, title: str, show: tuple[str, ...] = ("loss",), warn=None, lines: bool | None = None):
        self.run, self.title, self.show, self.warn = run, title, show, warn
        self.lines = (not sys.stdout.isatty()) if lines is None else lines
        self.progress = None
        self.t0 = self.last_t = self.begin_t = time.time()
        self.last_tokens = self.begin_tokens = 0.0
        self.last_step = self.begin_step = 0
        self.latest: dict = {}

    def on_train_begin(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn(f"[bold]{escape(self.title)}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False, disable=not console.is_terminal and not sys.stderr.isatty(),
        )
        self.task = self.progress.add_task(self.title, total=state.max_steps, completed=state.global_step, info="")
        self.progress.start()
        # the rates and the ETA count from here: loading the model is not training time
        self.last_t = self.begin_t = time.time()
        self.last_step = self.begin_step = state.global_step
        # resumed: tokens/s counts from the checkpoint's token count, not from 0
        self.last_tokens = self.begin_tokens = next(
            (h["num_tokens"] for h in reversed(state.log_history) if "num_tokens" in h), 0.0)

    def on_step_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()
        rec = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), **logs}
        summary = "train_runtime" in logs
        tokens = logs.get("num_tokens") or getattr(state, "num_input_tokens_seen", 0) or 0
        if summary:
            # the end-of-run record comes right after the last step's, with no new tokens since: its rate is
            # the whole run's (tokens since train begin / train_runtime), not the last interval's 0
            tokens = max(tokens, self.last_tokens)
            if tokens > self.begin_tokens and logs["train_runtime"] > 0:
                rec["tokens_per_s"] = round((tokens - self.begin_tokens) / logs["train_runtime"], 1)
        elif tokens and now > self.last_t:
            rec["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_t), 1)
            self.last_tokens = tokens
        steps = state.global_step - self.last_step
        if steps > 0 and now > self.last_t:
            rec["step_time_s"] = round((now - self.last_t) / steps, 4)
        self.last_t, self.last_step = now, state.global_step
        rec["time_s"] = round(now - self.t0, 2)
        if not summary:  # the end-of-run summary has none of the training metrics
            self.latest = rec
        self.run.log_metrics(rec)
        if self.lines:
            print(self.summary_line(rec, state) if summary else self.line(rec, state, now), flush=True)
        if self.progress is not None:
            info = "  ".join(f"{k} {_fmt(rec[k])}" for k in (*self.show, "tokens_per_s") if k in rec)
            self.progress.update(self.task, info=info)
        if self.warn is not None:
            for msg in self.warn(rec):
                console.print(f"[yellow]warning:[/] step {state.global_step}: {escape(msg)}")

    def line(self, rec: dict, state, now: float) -> str:
        """One logging step as plain text: step, loss, reward, accuracy, tokens/s, elapsed, ETA."""
        parts = [f"{self.title} step {state.global_step}/{state.max_steps}"]
        for label, keys in LINE:
            key = next((k for k in keys if rec.get(k) is not None), None)
            if key is not None:
                parts.append(f"{label} {_fmt(rec[key])}")
        elapsed, done = now - self.begin_t, state.global_step - self.begin_step
        parts.append(f"elapsed {_duration(elapsed)}")
        if done > 0 and state.max_steps:
            parts.append(f"ETA {_duration(elapsed / done * max(state.max_steps - state.global_step, 0))}")
        return "  ".join(parts)

    def summary_line(self, rec: dict, state) -> str:
        parts = [f"{self.title} trained {state.global_step} steps in {_duration(rec['train_runtime'])}"]
        if rec.get("train_loss") is not None:
            parts.append(f"train_loss {_fmt(rec['train_loss'])}")
        if rec.get("tokens_per_s") is not None:
            parts.append(f"tokens/s {_fmt(rec['tokens_per_s'])}")
        return "  ".join(parts)

    def on_train_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
