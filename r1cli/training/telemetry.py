"""The run's telemetry for every trainer stage: metrics.jsonl (one line per logging step, what
`r1 report` reads) and a rich progress bar, as a transformers Trainer callback."""

from __future__ import annotations

import math
import sys
import time

from rich.console import Console
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


class Telemetry(Callback):
    """Writes every log to OUT.partial/metrics.jsonl and draws a rich progress bar."""

    def __init__(self, run: StageRun, title: str, show: tuple[str, ...] = ("loss",), warn=None):
        self.run, self.title, self.show, self.warn = run, title, show, warn
        self.progress = None
        self.t0 = self.last_t = time.time()
        self.last_tokens = 0.0
        self.last_step = 0
        self.latest: dict = {}

    def on_train_begin(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn(f"[bold]{self.title}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False, disable=not console.is_terminal and not sys.stderr.isatty(),
        )
        self.task = self.progress.add_task(self.title, total=state.max_steps, completed=state.global_step, info="")
        self.progress.start()
        self.last_step = state.global_step
        # resumed: tokens/s counts from the checkpoint's token count, not from 0
        self.last_tokens = next((h["num_tokens"] for h in reversed(state.log_history) if "num_tokens" in h), 0.0)

    def on_step_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()
        rec = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), **logs}
        tokens = logs.get("num_tokens") or getattr(state, "num_input_tokens_seen", 0) or 0
        if tokens and now > self.last_t:
            rec["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_t), 1)
            self.last_tokens = tokens
        steps = state.global_step - self.last_step
        if steps > 0 and now > self.last_t:
            rec["step_time_s"] = round((now - self.last_t) / steps, 4)
        self.last_t, self.last_step = now, state.global_step
        rec["time_s"] = round(now - self.t0, 2)
        if "train_runtime" not in logs:  # the end-of-run summary has none of the training metrics
            self.latest = rec
        self.run.log_metrics(rec)
        if self.progress is not None:
            info = "  ".join(f"{k} {_fmt(rec[k])}" for k in (*self.show, "tokens_per_s") if k in rec)
            self.progress.update(self.task, info=info)
        if self.warn is not None:
            for msg in self.warn(rec):
                console.print(f"[yellow]warning:[/] step {state.global_step}: {msg}")

    def on_train_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)
