"""The README's toy tables, pasted from what `r1 report` wrote, never typed by hand:

    make readme-tables RUN=runs/demo        # = python -m r1cli.toy.readme runs/demo/report README.md
    r1 report runs/s0 runs/s1 runs/s2 --out runs/seeds --claims recipes/toy/claims.yaml
    python -m r1cli.toy.readme runs/seeds README.md      # several seeds: + the table across them

It takes the stage table and the claims table of the report's report.md, and each run's stage-3b
ablation (RUN-ablation) when it is there, and puts them between the README's
`<!-- toy-tables:begin -->` and `<!-- toy-tables:end -->` lines, under a line that names the run, its
seed (the toy data's manifest) and the CPU that produced them (lscpu's model name): a run is exact on
one kind of CPU only.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

from r1cli.artifacts import read_manifest
from r1cli.errors import UserError

BEGIN, END = "<!-- toy-tables:begin -->", "<!-- toy-tables:end -->"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    return name or platform.processor() or "an unnamed CPU"


def tables(report_md: str, several: bool = False) -> list[str]:
    """The markdown tables of report.md: the first run's stage table and claims table, or with several
    runs the table across them (claims_by_run has every run's claims; report.md every run's table)."""
    out: list[str] = []
    lines = report_md.splitlines()
    for title in (("## Across",) if several else ("## Stage table:", "### The claims of")):
        start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
        if start is None:
            continue
        table = []
        for line in lines[start + 1:]:
            if line.startswith("|"):
                table.append(line)
            elif table:
                break
        out += ([lines[start].lstrip("# ") + ":", ""] if title == "## Across" else []) + [*table, ""]
    return out


def short(t: dict) -> str:
    """A comparison in a few words: its metric, value and CI (the report has the whole sentence)."""
    from r1cli.claims import fmt

    diff = t["b"] is not None
    ci = f", CI {fmt(t['metric'], t['ci'][0], diff)} to {fmt(t['metric'], t['ci'][1], diff)}" if t.get("ci") else ""
    what = f"{t['a']} - {t['b']}" if diff else t["a"]
    return f"{t['metric']} {what} {fmt(t['metric'], t['value'], diff)}{ci}"


def claims_by_run(report: dict, seeds: list) -> list[str]:
    """One row per claim, one column per run: its status and the first comparison's value and CI."""
    runs = report.get("runs") or []
    if len(runs) < 2 or not runs[0].get("claims"):
        return []
    head = ["claim", *(f"seed {s}" for s in seeds)]
    rows = []
    for i, c in enumerate(runs[0]["claims"]):
        cells = []
        for r in runs:
            rc = r["claims"][i]
            bad = next((t for t in rc["comparisons"] if t["status"] != "holds"), None)
            cells.append(rc["status"] + (f" ({short(bad)})" if bad else ""))
        rows.append([c["name"], *cells])
    return ["The claims on each run (a claim that does not hold names its first comparison that does not):", "",
            "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |" for row in rows), ""]


def ablation_by_run(runs: list[Path], seeds: list) -> list[str]:
    """The stage-3b ablation of each run that has one (RUN-ablation, as `make demo` names it): right replies
    with and without rs_general, and their difference with its paired 95% CI."""
    from r1cli.toy import ablation

    cells = []
    for run, seed in zip(runs, seeds):
        abl = run.parent / f"{run.name}-ablation"
        if abl.is_dir():
            (with_, without), diff = ablation.rows(abl), ablation.difference(abl)
            cells.append((seed, with_, without, diff))
    if not cells:
        return []
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    head = ["right replies, %", *(f"seed {c[0]}" for c in cells)]
    rows = [["SFT with rs_general", *(pct(c[1]["right_reply"]) for c in cells)],
            ["SFT without rs_general", *(pct(c[2]["right_reply"]) for c in cells)],
            ["difference (95% CI)", *(f"{100 * c[3]['value']:+.1f} ({100 * c[3]['ci'][0]:+.1f} to {100 * c[3]['ci'][1]:+.1f}): "
                                     f"{c[3]['status']}" for c in cells)]]
    n = cells[0][3]["n_prompts"]
    return [f"The stage-3b ablation (`python -m r1cli.toy.ablation RUN-ablation`, {n} held-out general prompts; it "
            "holds when the whole CI is above 0):", "",
            "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def paste(report: Path, readme: Path) -> None:
    md = report / "report.md"
    if not md.is_file():
        raise UserError(f"{md} does not exist: run `make demo` (or r1 report) first")
    m = read_manifest(report) or {}
    # the runs the report read, as given, else the dir the report sits in (make demo's layout)
    runs = [Path(r) for r in (m.get("config") or {}).get("runs", [str(report.parent)])]
    seeds = []
    for i, run in enumerate(runs):
        if not (run / "data").is_dir() and len(runs) == 1:
            runs[i] = run = report.parent
        seeds.append(((read_manifest(run / "data") or {}).get("config") or {}).get("seed", "?"))
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise UserError(f"{readme} has no {BEGIN} ... {END} lines to paste the tables between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    data = json.loads((report / "report.json").read_text()) if (report / "report.json").is_file() else {}
    body = [f"`r1 report {' '.join(map(str, runs))}` on seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}, {cpu_name()} (pasted by `make readme-tables`):", "",
            *tables(md.read_text(), several=len(runs) > 1), *claims_by_run(data, seeds), *ablation_by_run(runs, seeds)]
    readme.write_text(head + BEGIN + "\n" + "\n".join(body) + END + tail)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m r1cli.toy.readme REPORT_DIR README.md")
    try:
        paste(Path(sys.argv[1]), Path(sys.argv[2]))
    except UserError as e:
        sys.exit(f"error: {e}")
