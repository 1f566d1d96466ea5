"""The README's toy tables, pasted from what `r1 report` wrote, never typed by hand:

    make readme-tables RUN=runs/demo        # = python -m r1cli.toy.readme runs/demo/report README.md

It takes the stage table and the claims table of the report's report.md and puts them between the
README's `<!-- toy-tables:begin -->` and `<!-- toy-tables:end -->` lines, under a line that names the
run, its seed (the toy data's manifest) and the CPU that produced them (lscpu's model name): a run is
exact on one kind of CPU only.
"""

from __future__ import annotations

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


def tables(report_md: str) -> list[str]:
    """The markdown tables of report.md's first run: its stage table, then its claims table."""
    out: list[str] = []
    lines = report_md.splitlines()
    for title in ("## Stage table:", "### The claims of"):
        start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
        if start is None:
            continue
        table = []
        for line in lines[start + 1:]:
            if line.startswith("|"):
                table.append(line)
            elif table:
                break
        out += [*table, ""]
    return out


def paste(report: Path, readme: Path) -> None:
    md = report / "report.md"
    if not md.is_file():
        raise UserError(f"{md} does not exist: run `make demo` (or r1 report) first")
    m = read_manifest(report) or {}
    # the run the report read: its first RUN_DIR, as given, else the dir the report sits in (make demo's layout)
    run = Path((m.get("config") or {}).get("runs", [str(report.parent)])[0])
    if not (run / "data").is_dir():
        run = report.parent
    data = read_manifest(run / "data") or {}
    seed = (data.get("config") or {}).get("seed", "?")
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise UserError(f"{readme} has no {BEGIN} ... {END} lines to paste the tables between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = [f"`r1 report {run}` on seed {seed}, {cpu_name()} (pasted by `make readme-tables`):", "",
            *tables(md.read_text())]
    readme.write_text(head + BEGIN + "\n" + "\n".join(body) + END + tail)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m r1cli.toy.readme REPORT_DIR README.md")
    try:
        paste(Path(sys.argv[1]), Path(sys.argv[2]))
    except UserError as e:
        sys.exit(f"error: {e}")
