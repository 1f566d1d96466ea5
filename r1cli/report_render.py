"""How `r1 report` shows what r1cli/stages/report.py read: the table's rows and columns, the markdown page, the rich tables for the
terminal and the PNG training curves (matplotlib, Agg backend: no display needed).

Everything here renders the report.json data; nothing is measured or read from a run here.
"""

from __future__ import annotations

from pathlib import Path

# (role, label) in the paper's order: the rows of the stage table
ROLES = (("base", "base"), ("base_r1zero", "base, r1zero template"), ("r1zero", "R1-Zero"), ("coldstart", "cold start"), ("grpo", "stage-2 RL"),
         ("grpo_nolang", "stage-2 RL, no language reward"), ("grpo_tools", "stage-2 RL with tools"), ("sft", "stage-3 SFT"),
         ("align", "stage-4 align"))
RL_ROLES = ("r1zero", "grpo", "grpo_nolang", "grpo_tools", "align")
# tool_call_rate (calls per sample) and tool_failure_rate (failed calls per call): evals sampled with tools
TOOL_KEYS = ("tool_call_rate", "tool_failure_rate")
EVAL_KEYS = ("pass@1", "cons@k", "format_rate", "language_consistency_rate", "mean_completion_tokens", *TOOL_KEYS)
COLUMNS = (*EVAL_KEYS[:5], "helpfulness", "right_reply", "safe_rate", *TOOL_KEYS, "wall_time_s")
HEADERS = {"pass@1": "pass@1 %", "cons@k": "cons@k %", "format_rate": "format %", "language_consistency_rate":
           "language %", "mean_completion_tokens": "tokens", "helpfulness": "helpful RM", "right_reply": "right reply %", "safe_rate": "safe %",
           "wall_time_s": "wall time", "tool_call_rate": "tool calls / sample", "tool_failure_rate": "tool failures %"}
PERCENT = {"pass@1", "cons@k", "format_rate", "language_consistency_rate", "right_reply", "safe_rate", "tool_failure_rate"}
# (file name, metrics.jsonl key, title): what TRL's GRPOTrainer logs, as our Telemetry callback writes it
CURVES = (("reward", "reward", "training reward (weighted sum)"),
          ("accuracy", "rewards/accuracy/mean", "accuracy reward"),
          ("completion_length", "completions/mean_length", "mean completion length (tokens)"),
          ("language_consistency", "rewards/language/mean", "language-consistency reward"))

# the terminal table fits 80 columns: short stage names and headers, and no cons@k (report.md has them all)
TERMINAL_COLUMNS = tuple(k for k in COLUMNS[1:] if k != "cons@k")
SHORT_LABELS = {"base": "base", "base_r1zero": "base, r1zero", "r1zero": "R1-Zero", "coldstart": "cold start", "grpo": "stage 2",
                "grpo_nolang": "stage 2 -lang", "grpo_tools": "stage 2 +tools", "sft": "stage 3 SFT", "align": "stage 4"}
# a row's dir when `make demo` made it: other dirs are named after the label
CANONICAL_DIR = {"base_r1zero": "base"}
SHORT_HEADERS = {"pass@1": "pass@1", "cons@k": "cons@k", "format_rate": "format", "language_consistency_rate": "lang",
                 "mean_completion_tokens": "tokens", "helpfulness": "helpful", "right_reply": "right", "safe_rate": "safe",
                 "wall_time_s": "time", "tool_call_rate": "calls", "tool_failure_rate": "fails"}


def shown(rows: list[dict], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns some row has a value in (the tool columns only for runs that used tools; a run with no
    stage 4 has no general columns)."""
    optional = {*TOOL_KEYS, "helpfulness", "right_reply", "safe_rate"}
    return tuple(k for k in columns if k not in optional or any(r.get(k) is not None for r in rows))


def fmt(key: str, v, compact: bool = False) -> str:
    """A cell: rates in %, wall time as 1m05s; across runs: mean ± half the spread (min–max), or with
    compact (the terminal) mean and ±half on two lines."""
    if isinstance(v, dict):
        if v["n"] < 2:
            return fmt(key, v["mean"])
        spread = f"{fmt(key, v['mean'])}{chr(10) + '±' if compact else ' ± '}{fmt(key, (v['max'] - v['min']) / 2)}"
        return spread if compact else f"{spread} ({fmt(key, v['min'])}–{fmt(key, v['max'])})"
    if v is None:
        return "–"
    if key in PERCENT:
        return f"{100 * v:.1f}"
    if key == "wall_time_s":
        if v >= 3600:
            return f"{int(v // 3600)}h{int(v % 3600 // 60):02d}m"
        return f"{int(v // 60)}m{int(v % 60):02d}s" if v >= 60 else f"{v:.0f}s"
    return f"{v:.3f}" if key == "helpfulness" else f"{v:.2f}" if key == "tool_call_rate" else f"{v:.1f}"


# --- plots -----------------------------------------------------------------------------------------------


def plot_curves(runs: list[dict], out: Path) -> tuple[list[str], list[str]]:
    """One PNG per curve: a panel per RL stage, a line per run. Returns (files written, notes on what is absent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = {r: i for i, (r, _) in enumerate(ROLES)}
    panels: dict[str, str] = {}  # RL dir -> its row label, in the paper's order
    for run in runs:
        for row in run["stage_table"]:
            if row["dir"] in run["curves"]:
                panels.setdefault(row["dir"], f"{row['label']} ({row['dir']})")
    dirs = sorted(panels, key=lambda d: min(order.get(r["row"], 99) for x in runs for r in x["stage_table"]
                                             if r["dir"] == d))
    written, absent = [], []
    if not dirs:
        return written, ["no RL stage (r1zero, grpo, align) with a metrics.jsonl: no training curves"]
    for name, key, title in CURVES:
        lacking = [f"{run['name']}/{d}" for run in runs for d in dirs
                   if d in run["curves"] and name not in run["curves"][d]]
        if len(lacking) == sum(d in run["curves"] for run in runs for d in dirs):
            absent.append(f"{title}: no RL stage logged `{key}`")
            continue
        if lacking:
            absent.append(f"{title}: not logged by {', '.join(lacking)}")
        fig, axes = plt.subplots(1, len(dirs), figsize=(4 * len(dirs), 3.2), squeeze=False, sharey=True)
        for ax, d in zip(axes[0], dirs):
            for run in runs:
                points = run["curves"].get(d, {}).get(name)
                if points:
                    ax.plot([p[0] for p in points], [p[1] for p in points], label=run["name"], linewidth=1.2,
                            marker="." if len(points) < 30 else None)
            if not ax.lines:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(panels[d], fontsize=9)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(title, fontsize=8)
        if len(runs) > 1:
            axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=100)
        plt.close(fig)
        written.append(f"{name}.png")
    return written, absent


# --- terminal --------------------------------------------------------------------------------------------


def ci(v) -> str:
    """A 95% CI of a rate as `low–high` in %; – when there is none."""
    return "–" if not v else f"{fmt('pass@1', v[0])}–{fmt('pass@1', v[1])}"


def rich_table(rows: list[dict], title: str):
    """The stage table for the terminal (rates in %; the dir is in report.md). It fits 80 columns
    without cutting a number: one space between columns, no edges, and only the stage label may
    wrap (the numbers' columns never shrink)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    multi = bool(rows) and "runs" in rows[0]
    columns = shown(rows, TERMINAL_COLUMNS)
    t = Table(title=escape(f"{title} (rates in %)"), box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    t.add_column("stage", justify="left", overflow="fold")
    for col in (*(["n"] if multi else []), "pass@1", *([] if multi else ["95% CI"]),
                *(SHORT_HEADERS[k] for k in columns)):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        label = SHORT_LABELS.get(r["row"], r["label"])
        if r["dir"] and r["dir"] != CANONICAL_DIR.get(r["row"], r["row"]):
            label += f" ({r['dir']})"
        t.add_row(escape(label), *([str(r["runs"])] if multi else []), fmt("pass@1", r["pass@1"], compact=True),
                  *([] if multi else [ci(r.get("pass@1_ci"))]), *(fmt(k, r.get(k), compact=True) for k in columns))
    return t


def claim_line(c: dict) -> str:
    """One claim's status for the terminal (rich markup): its text, then each comparison that does not hold."""
    from rich.markup import escape

    color = {"holds": "green", "unclear": "yellow", "fails": "red", "not measured": "yellow"}[c["status"]]
    why = escape("; ".join(t["why"] for t in c["comparisons"] if t["status"] != "holds"))
    return f"[{color}]claim {c['status']}:[/] {escape(c['claim'])}" + (f" [dim]({why})[/]" if why else "")


# --- markdown --------------------------------------------------------------------------------------------


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]


def stage_table_md(rows: list[dict]) -> list[str]:
    multi = bool(rows) and "runs" in rows[0]
    columns = shown(rows, COLUMNS[1:])
    header = ["stage", "dir", *(["runs"] if multi else []), HEADERS["pass@1"], *([] if multi else ["pass@1 95% CI"]),
              *(HEADERS[k] for k in columns)]
    return _table(header, [[r["label"], r["dir"] or r.get("eval_dir") or "–", *([str(r["runs"])] if multi else []),
                            fmt("pass@1", r["pass@1"]), *([] if multi else [ci(r.get("pass@1_ci"))]),
                            *(fmt(k, r.get(k)) for k in columns)] for r in rows])


def claims_md(results: list[dict]) -> list[str]:
    lines = []
    for c in results:
        lines += [[c["claim"], c["status"], "", ""]]
        lines += [["", t["status"], t["metric"], t["why"]] for t in c["comparisons"]]
    return _table(["claim", "status", "metric", "numbers"], lines)


def markdown(data: dict, claims_file=None) -> str:
    names = ", ".join(f"`{r['name']}`" for r in data["runs"])
    md = ["# r1 report", "",
          f"Runs: {names}. Every number is read from the runs' manifests (`r1.json`), `metrics.jsonl` and the eval "
          "dirs of `r1 eval`.", "",
          "pass@1: share of the k samples per prompt whose answer is verified, averaged over prompts; cons@k: the "
          "majority-voted answer of all k samples is right (maj@k; eval dirs' r1.json also have pass@j, unbiased, "
          "and maj@j for every j <= k); 95% CI: of pass@1, a percentile bootstrap over the eval's prompts (1000 "
          "resamples, seed 0); format and language: share of samples in the R1 format / with a CoT in the "
          "prompt's language; tokens: mean completion tokens; helpful RM: the helpfulness reward model's mean raw "
          "score; right reply: share of replies (after the CoT) that say what the reference says; safe: share the harmlessness RM scores safe; wall time: of the stage that made the checkpoint. "
          "– = not measured.", ""]
    for run in data["runs"]:
        md += [f"## Stage table: {run['name']}", "", *stage_table_md(run["stage_table"]), ""]
        if run.get("claims"):
            md += [f"### The claims of `{claims_file}` on {run['name']}", "",
                   "holds: the point estimate meets the claim and so does the whole 95% CI of the difference (a paired "
                   "bootstrap over the prompts both rows were measured on); unclear: only the point estimate does; "
                   "fails: the point estimate does not; not measured: a stage or its eval is missing. "
                   "`r1 report --fail-on-claims` exits 1 unless every claim holds.", "",
                   *claims_md(run["claims"]), ""]
        settings: dict[str, list[str]] = {}
        for r in run["stage_table"]:
            if r.get("eval"):
                e = r["eval"]
                key = f"k={e['k']} on {e['prompts']} prompts, temperature {e['temperature']}, template {e['template']}"
                settings.setdefault(key, []).append(r["eval_dir"])
        md += [f"- eval settings of {', '.join(v)}: {k}" for k, v in settings.items()]
        md += [f"- {r['dir'] or r['label']}: {n}" for r in run["stage_table"] for n in r["notes"]]
        md.append("")
    if "across_runs" in data:
        md += [f"## Across {len(data['runs'])} runs: mean ± half the spread (min–max)", "",
               *stage_table_md(data["across_runs"]), ""]
    md += ["## Training curves of the RL stages", ""]
    md += [f"![{Path(p).stem}]({p})" for p in data["plots"]] + [""]
    md += [f"- not plotted: {n}" for n in data["not_plotted"]] + ([""] if data["not_plotted"] else [])
    unfinished = [(run["name"], u) for run in data["runs"] for u in run["unfinished"]]
    if unfinished:
        md += ["## Unfinished stages", ""]
        md += [f"- `{name}/{u['dir']}` (stage {u['stage'] or '?'}, status {u['status'] or 'no manifest'}): not in the "
               "tables; finish it with the same command plus --resume, or remove it" for name, u in unfinished]
        md.append("")
    other = [[run["name"], o["dir"], o["kind"], o["stage"] or "–",
              ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in o["numbers"].items()),
              fmt("wall_time_s", o["wall_time_s"])] for run in data["runs"] for o in run["other"]]
    if other:
        md += ["## Other stage outputs", "",
               *_table(["run", "dir", "kind", "stage", "numbers", "wall time"], other), ""]
    md += ["## Lineage: the inputs each manifest records", "",
           "ok: a dir of the run with the recorded fingerprint; changed / missing: inside the run but changed since "
           "the stage read it / gone; external: outside the run (not checked).", ""]
    md += _table(["run", "dir", "inputs"],
                 [[run["name"], rel, " · ".join(f"{x['input']} ({x['status']})" for x in links) or "–"]
                  for run in data["runs"] for rel, links in run["lineage"].items()])
    if data["problems"]:
        md += ["", "## Problems", ""] + [f"- {p}" for p in data["problems"]]
    return "\n".join(md) + "\n"
