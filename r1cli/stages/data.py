"""`r1 data inspect|export|import|merge`: look at, convert and join datasets.

    r1 data inspect runs/toy/rl                       # rows, domains, languages, columns, a few rows
    r1 data export runs/toy/rl --to rl.jsonl          # or rl.parquet
    r1 data import gsm8k.jsonl --to data/gsm8k --format gsm8k
    r1 data merge shard0 shard1 --to merged           # in order; duplicate ids keep the first

import and merge write r1 dataset dirs through artifacts.stage_output (OUT.partial, then
rename; counts in r1.json). export writes a plain file for other tools, so it has no
manifest; it follows the same rules otherwise: refuse an existing --to without --force,
write `FILE.partial` and rename it when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from r1cli.artifacts import check_input, check_output, partial_path, read_manifest, stage_output
from r1cli.data.formats import FORMATS, convert
from r1cli.data.io import (
    concat,
    dataset,
    holds_datasets,
    load_table,
    save_dataset,
    sub_datasets,
    table_of,
    write_jsonl,
    write_parquet,
)
from r1cli.data.schema import KINDS, describe, guess_kind, validate, with_ids
from r1cli.errors import UserError

EXPORTS = {".jsonl": write_jsonl, ".parquet": write_parquet}


def _say(text: str) -> None:
    """One result line; not wrapped at the terminal width (paths stay whole, greppable)."""
    Console(soft_wrap=True).print(text, highlight=False)


def _check_to(to: Path, force: bool) -> Path:
    """Refuse an existing --to (without --force) with the flag's own name; then the usual checks."""
    to = Path(to)
    if to.exists() and not force:
        raise UserError(f"--to {to} exists: pass --force to replace it, or choose another --to")
    if partial_path(to).exists() and not force:
        raise UserError(f"{partial_path(to)} is left from an unfinished run: pass --force to start over")
    return check_output(to, force=force)


def _counts(ds, col: str) -> dict:
    """{value: rows} of a string column, most common first ({} when the column is absent)."""
    if col not in ds.column_names:
        return {}
    c = table_of(ds).column(col)
    if not pa.types.is_string(c.type) and not pa.types.is_large_string(c.type):
        return {}
    vc = pc.value_counts(c.fill_null("(none)")).to_pylist()
    return dict(sorted(((d["values"], d["counts"]) for d in vc), key=lambda kv: -kv[1]))


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _cell(value, width: int = 100) -> str:
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        text = " | ".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


# --- inspect ---------------------------------------------------------------------------------


def inspect(path: Path, rows: int = 3, console: Console | None = None) -> dict:
    """Print a summary of any loadable input; return the numbers printed."""
    console = console or Console()
    path = check_input(path, "DATASET")
    if holds_datasets(path):
        return _inspect_many(path, console)
    ds = load_table(path, "DATASET")
    kind = guess_kind(ds.column_names)
    table = table_of(ds)
    summary = {"rows": len(ds), "kind": kind, "columns": {f.name: describe(f.type) for f in table.schema},
               "by_domain": _counts(ds, "domain"), "by_language": _counts(ds, "language")}
    t = Table(title=f"r1 data inspect {path}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", f"{len(ds):,}")
    t.add_row("kind", kind or "(not a canonical kind: no prompt / messages column)")
    m = read_manifest(path) if Path(path).is_dir() else None
    if m:
        t.add_row("made by", f"r1 {m.get('stage')} at {m.get('created')}")
    t.add_row("by domain", _counts_text(summary["by_domain"]))
    t.add_row("by language", _counts_text(summary["by_language"]))
    t.add_row("columns", "\n".join(f"{k}: {v}" for k, v in summary["columns"].items()))
    console.print(t)
    for i in range(min(rows, len(ds))):
        r = Table(title=f"row {i}", show_header=False, title_justify="left")
        r.add_column(style="cyan")
        r.add_column(overflow="fold")
        for k, v in ds[i].items():
            r.add_row(k, _cell(v))
        console.print(r)
    return summary


def _inspect_many(path: Path, console: Console) -> dict:
    """A dir of datasets (`r1 toy data OUT`): one line per dataset."""
    t = Table(title=f"r1 data inspect {path}", title_justify="left")
    for col in ("dataset", "kind", "rows", "by domain", "by language"):
        t.add_column(col)
    out = {}
    for name in sub_datasets(path):
        ds = load_table(path / name, "DATASET")
        out[name] = {"rows": len(ds), "kind": guess_kind(ds.column_names)}
        t.add_row(name, out[name]["kind"] or "-", f"{len(ds):,}", _counts_text(_counts(ds, "domain")),
                  _counts_text(_counts(ds, "language")))
    console.print(t)
    console.print(f"[dim]look at one: r1 data inspect {path / next(iter(out))}[/]")
    return out


# --- export ----------------------------------------------------------------------------------


def export(path: Path, to: Path, force: bool = False) -> Path:
    """Write any loadable input as one .jsonl or .parquet file."""
    to = Path(to)
    writer = EXPORTS.get(to.suffix.lower())
    if writer is None:
        raise UserError(f"--to {to}: give a file name ending in {' or '.join(EXPORTS)}")
    _check_to(to, force)
    if to.is_dir():
        raise UserError(f"--to {to} is a directory: give a file name ending in {' or '.join(EXPORTS)}")
    ds = load_table(path, "DATASET")
    part = partial_path(to)
    try:
        writer(ds, part)
        os.replace(part, to)
    finally:
        part.unlink(missing_ok=True)
    _say(f"wrote {len(ds):,} rows to {to}")
    return to


# --- import ----------------------------------------------------------------------------------


def import_(src: Path, to: Path, fmt: str = "jsonl", kind: str | None = None, skip_bad: bool = False,
            force: bool = False) -> Path:
    """A public-format (or canonical) dataset -> an r1 dataset dir in canonical columns."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    if fmt != "jsonl" and kind not in (None, "prompts"):
        raise UserError(f"--format {fmt} makes prompts; leave out --kind {kind}")
    src = check_input(src, "SRC")
    _check_to(to, force)
    ds, skipped = convert(load_table(src, "SRC"), fmt, src, skip_bad=skip_bad)
    kind = kind or guess_kind(ds.column_names)
    if kind is None:
        raise UserError(f"SRC {src} has none of the canonical columns (it has {', '.join(ds.column_names)}): "
                        "give prompt (or messages, ...) columns, or pass --format gsm8k / math")
    ds = validate(ds, kind, src)
    config = {"format": fmt, "kind": kind, "skip_bad": skip_bad}
    with stage_output(to, kind="dataset", stage="data-import", config=config, inputs=[src], force=force) as run:
        save_dataset(ds, run.partial)
        run.counts.update(rows=len(ds), skipped=skipped, by_domain=_counts(ds, "domain"),
                          by_language=_counts(ds, "language"))
    note = f" ({skipped} rows without a final answer skipped)" if skipped else ""
    _say(f"imported {len(ds):,} {kind} rows from {src} into {to}{note}")
    return to


# --- merge -----------------------------------------------------------------------------------


def merge(sources: list[Path], to: Path, force: bool = False) -> dict:
    """Concatenate `sources` in order and drop rows whose `id` an earlier row has."""
    if not sources:
        raise UserError("r1 data merge needs at least one dataset to merge")
    sources = [check_input(s, "DATASET") for s in sources]
    _check_to(to, force)
    parts, kinds, rows_in = [], {}, []
    for s in sources:
        ds = load_table(s, "DATASET")
        kind = guess_kind(ds.column_names)
        if kind is not None:  # same fixes (numeric answers, made-up ids) as every stage applies
            ds = validate(ds, kind, s)
            kinds[str(s)] = kind
        parts.append(ds)
        rows_in.append(len(ds))
    if len(set(kinds.values())) > 1:
        raise UserError("cannot merge datasets of different kinds: "
                        + ", ".join(f"{p} holds {k}" for p, k in kinds.items()))
    merged = concat(parts, [str(s) for s in sources]) if len(parts) > 1 else parts[0]
    table = with_ids(table_of(merged))
    ids = table.column("id").cast(pa.string()).to_pylist()
    seen, keep = set(), []
    for i, id_ in enumerate(ids):
        if id_ not in seen:
            seen.add(id_)
            keep.append(i)
    if len(keep) < len(ids):
        table = table.take(pa.array(keep, pa.int64()))
    out_ds = dataset(table.replace_schema_metadata(None))
    counts = {"rows": len(out_ds), "duplicates": len(ids) - len(keep),
              "inputs": [{"path": str(s), "rows": n} for s, n in zip(sources, rows_in)],
              "by_domain": _counts(out_ds, "domain"), "by_language": _counts(out_ds, "language")}
    with stage_output(to, kind="dataset", stage="data-merge", config={"sources": [str(s) for s in sources]},
                      inputs=sources, force=force) as run:
        save_dataset(out_ds, run.partial)
        run.counts.update(counts)
    _say(" + ".join(f"{n:,}" for n in rows_in) + f" rows -> {len(out_ds):,} rows in {to} "
                    f"({counts['duplicates']:,} duplicate ids dropped)")
    return counts
