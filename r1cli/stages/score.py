"""`r1 score`: add reward columns to a dataset of completions.

    r1 score samples.jsonl --rewards accuracy,format,language --weights 1,1,0.5 --out scored
    r1 score runs/demo/eval_grpo --rewards accuracy,repetition --set reward_options.timeout=2 --out scored

INPUT is JSONL, Parquet or a dataset dir with `prompt` and `completion` (a string or an
assistant message) plus the columns the rewards need (`answer` for accuracy, `language`,
`domain`, `tests` for code). OUT is a dataset dir: every input column, one `reward_<name>`
column per reward (null where that reward does not apply to the row) and `reward`, the
weighted sum over the rewards that apply (null when none does). The manifest has each
reward's mean over its rows, how many rows each applied to, and the accuracy timeouts.

`--helpful-rm` / `--harmless-rm` take a reward-model dir or `http://HOST:PORT/v1` of one served by
vLLM (r1cli/rewards/served.py; `rm_http.*` settings): a row a served RM gave no score after every
retry is null in its column, and the manifest counts the requests (`counts.rm_http`).

Rewards are called exactly as TRL calls them during training (the registry in
r1cli/rewards), in batches, with a prompt's completions kept in one batch so group-wise
rewards (`length`) see the whole group.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from r1cli.artifacts import check_input, check_output, stage_output
from r1cli.config import ScoreConfig
from r1cli.data import load_completions, save_dataset
from r1cli.errors import UserError
from r1cli.recipe import to_dict
from r1cli.rewards import resolve_rewards

RESERVED = ("prompt", "completion", "completion_ids")  # passed as TRL's own arguments, not as columns


# --- scoring -------------------------------------------------------------------------------------------


def batches(keys: list[str], size: int) -> list[list[int]]:
    """Row indices in batches of about `size`, rows with the same key (prompt) together."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    out, cur = [], []
    for j, i in enumerate(order):
        cur.append(i)
        if len(cur) >= size and (j + 1 == len(order) or keys[order[j + 1]] != keys[i]):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _clean(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def score_rows(ds, rewards: list, batch_size: int, progress=None) -> dict[str, list]:
    """{name: [float | None] per row} for each reward, plus "reward" (the weighted sum)."""
    n = len(ds)
    table = ds.to_dict()  # plain lists: indexing a datasets Column row by row is slow
    prompts, completions = table["prompt"], table["completion"]
    completion_ids = table.get("completion_ids")
    columns = {c: v for c, v in table.items() if c not in RESERVED}
    out = {name: [None] * n for name, _, _ in rewards}
    for idx in batches([repr(p) for p in prompts], batch_size):
        kwargs = {c: [v[i] for i in idx] for c, v in columns.items()}
        ids = [completion_ids[i] for i in idx] if completion_ids is not None else None
        for name, fn, _ in rewards:
            values = fn(prompts=[prompts[i] for i in idx], completions=[completions[i] for i in idx],
                        completion_ids=ids, **kwargs)
            if len(values) != len(idx):
                raise RuntimeError(f"reward {name!r} returned {len(values)} values for {len(idx)} completions")
            for i, v in zip(idx, values):
                out[name][i] = _clean(v)
        if progress is not None:
            progress(len(idx))
    total = []
    for i in range(n):
        parts = [w * out[name][i] for name, _, w in rewards if out[name][i] is not None]
        total.append(sum(parts) if parts else None)
    out["reward"] = total
    return out


def summarize(values: dict[str, list], rewards: list) -> tuple[dict, dict]:
    """(metrics, counts) for the manifest."""
    metrics, applicable = {}, {}
    for name in [n for n, _, _ in rewards] + ["reward"]:
        vals = [v for v in values[name] if v is not None]
        applicable[name] = len(vals)
        metrics[f"{name}_mean"] = round(sum(vals) / len(vals), 6) if vals else None
    stats = [getattr(fn, "stats", {}) for _, fn, _ in rewards]
    counts = {"rows": len(values["reward"]), "applicable": applicable,
              "timeouts": sum(s.get("timeout", 0) for s in stats), "verify_errors": sum(s.get("error", 0) for s in stats)}
    served = {name: fn.served.summary() for name, fn, _ in rewards if getattr(fn, "served", None)}
    if served:  # a served RM's requests, retries, failures; its rows without a score are null in reward_<name>
        counts["rm_http"] = served
    return metrics, counts


# --- the stage ---------------------------------------------------------------------------------------------


def run(cfg: ScoreConfig, *, data: Path, out: Path, force: bool = False) -> Path:
    from rich.console import Console
    from rich.markup import escape

    # --- check inputs: names, options, columns, all before the first reward is computed
    check_output(out, force)
    data = check_input(data, "INPUT")
    options = dict(prefilled_think=cfg.prefilled_think, template=cfg.template, **cfg.reward_options)
    for key in ("workers", "helpful_rm", "harmless_rm"):
        if getattr(cfg, key) is not None:
            options[key] = getattr(cfg, key)
    if cfg.helpful_rm or cfg.harmless_rm:
        options["rm_http"] = cfg.rm_http
    ds = load_completions(data, "INPUT")
    rewards = resolve_rewards(cfg.rewards, **options)
    for name, fn, _ in rewards:
        for col in getattr(fn, "required_columns", ()):
            if col not in ds.column_names:
                raise UserError(f"reward {name!r} needs column {col!r}, which {data} lacks "
                                f"(it has {', '.join(ds.column_names)}): add it or drop the reward")

    # --- score, write
    console, err = Console(), Console(stderr=True)
    with stage_output(out, kind="dataset", stage="score", config=to_dict(cfg), inputs=[data], force=force) as run_:
        t0 = time.monotonic()
        with _progress(err, len(ds)) as advance:
            values = score_rows(ds, rewards, cfg.batch_size, advance)
        elapsed = time.monotonic() - t0
        added = [f"reward_{name}" for name, _, _ in rewards] + ["reward"]
        ds = ds.remove_columns([c for c in added if c in ds.column_names])
        for name, _, _ in rewards:
            ds = ds.add_column(f"reward_{name}", values[name])
        ds = ds.add_column("reward", values["reward"])
        save_dataset(ds, run_.partial)
        metrics, counts = summarize(values, rewards)
        metrics["samples_per_s"] = round(len(ds) / elapsed, 2) if elapsed > 0 else None
        run_.metrics.update(metrics)
        run_.counts.update(counts)
    console.print(summary_table(metrics, counts, rewards, title=f"r1 score {data}"))
    if counts["timeouts"]:
        console.print(f"[yellow]{counts['timeouts']} answers hit the verification deadline and scored 0[/]")
    console.print(f"[dim]scored rows: {escape(str(out))}[/]")
    return out


def summary_table(metrics: dict, counts: dict, rewards: list, title: str):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for col, just in (("reward", "left"), ("weight", "right"), ("rows scored", "right"), ("mean", "right")):
        table.add_column(col, justify=just)
    n = counts["rows"]
    for name, _, w in rewards + [("reward", None, None)]:
        mean = metrics[f"{name}_mean"]
        table.add_row(escape(name) if w is not None else "[bold]reward (weighted sum)[/]", "" if w is None else f"{w:g}",
                      f"{counts['applicable'][name]}/{n}", "-" if mean is None else f"{mean:.4f}")
    return table


class _progress:
    """A rich progress bar with samples/s; `with _progress(console, total) as advance: advance(k)`."""

    def __init__(self, console, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):  # over the whole run: rich's own speed needs many updates
                rate = task.completed / task.elapsed if task.elapsed else 0.0
                return Text(f"{rate:,.1f} samples/s", style="progress.data.speed")

        self.bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                            console=console, transient=False)
        self.task = self.bar.add_task("scoring", total=total)

    def __enter__(self):
        self.bar.start()
        return lambda k: self.bar.advance(self.task, k)

    def __exit__(self, *exc):
        self.bar.stop()
        return False
