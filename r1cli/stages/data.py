"""`r1 data inspect|export|import|merge|filter`: look at, convert, join and filter datasets.

    r1 data inspect runs/toy/rl                       # rows, domains, languages, columns, a few rows
    r1 data export runs/toy/rl --to rl.jsonl          # or rl.parquet
    r1 data import gsm8k.jsonl --to data/gsm8k --format gsm8k
    r1 data merge shard0 shard1 --to merged           # in order; duplicate ids keep the first
    r1 data filter runs/toy/rl --from runs/toy/eval_rl --pass-rate 0.1..0.9 --to rl_mid   # by measured pass rate
    r1 data filter gsm8k --max-prompt-tokens 3840 --model Qwen2.5-Math-7B --to gsm8k_fit   # by prompt length

import, merge and filter write r1 dataset dirs through artifacts.stage_output (OUT.partial, then
rename; counts in r1.json). export writes a plain file for other tools, so it has no
manifest; it follows the same rules otherwise: refuse an existing --to without --force,
write `FILE.partial` and rename it when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from datasets import load_from_disk
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from r1cli.artifacts import check_input, check_output, partial_path, read_manifest, stage_output
from r1cli.data import load_prompts
from r1cli.data.formats import FORMATS, convert, rename, suggest
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
from r1cli.evaluation import ADDED
from r1cli.generation.lengths import count_tokens, load_tokenizer
from r1cli.templates import TEMPLATES, apply_template, is_r1_format

EXPORTS = {".jsonl": write_jsonl, ".parquet": write_parquet}


def _say(text: str) -> None:
    """One result line; not wrapped at the terminal width (paths stay whole, greppable), never markup
    (a path such as exp[v2] is printed as it is)."""
    Console(soft_wrap=True, emoji=False).print(text, highlight=False, markup=False)


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
    return escape(", ".join(f"{k} {v}" for k, v in counts.items())) or "-"


def _cell(value, width: int = 100) -> str:
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        text = " | ".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    # data is never markup: MATH's \[ ... \] and [asy] ... [/asy] are shown as they are
    return escape(text if len(text) <= width else text[: width - 1] + "…")


# --- inspect ---------------------------------------------------------------------------------


def inspect(path: Path, rows: int = 3, console: Console | None = None, split: str | None = None) -> dict:
    """Print a summary of any loadable input; return the numbers printed."""
    console = console or Console(emoji=False)  # a :name: in the data is text, not an emoji
    path = check_input(path, "DATASET")
    if holds_datasets(path) and split is None:
        return _inspect_many(path, console)
    ds = load_table(path, "DATASET", split)
    kind = guess_kind(ds.column_names)
    table = table_of(ds)
    summary = {"rows": len(ds), "kind": kind, "columns": {f.name: describe(f.type) for f in table.schema},
               "by_domain": _counts(ds, "domain"), "by_language": _counts(ds, "language")}
    t = Table(title=escape(f"r1 data inspect {path}"), show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", f"{len(ds):,}")
    t.add_row("kind", kind or "(not a canonical kind: no prompt / messages column)")
    m = read_manifest(path) if Path(path).is_dir() else None
    if m:
        t.add_row("made by", escape(f"r1 {m.get('stage')} at {m.get('created')}"))
    t.add_row("by domain", _counts_text(summary["by_domain"]))
    t.add_row("by language", _counts_text(summary["by_language"]))
    t.add_row("columns", escape("\n".join(f"{k}: {v}" for k, v in summary["columns"].items())))
    console.print(t)
    for i in range(min(rows, len(ds))):
        r = Table(title=f"row {i}", show_header=False, title_justify="left")
        r.add_column(style="cyan")
        r.add_column(overflow="fold")
        for k, v in ds[i].items():
            r.add_row(escape(k), _cell(v))
        console.print(r)
    return summary


def _inspect_many(path: Path, console: Console) -> dict:
    """A dir of datasets (`r1 toy data OUT`): one line per dataset."""
    t = Table(title=escape(f"r1 data inspect {path}"), title_justify="left")
    for col in ("dataset", "kind", "rows", "by domain", "by language"):
        t.add_column(col)
    out = {}
    for name in sub_datasets(path):
        ds = load_table(path / name, "DATASET")
        out[name] = {"rows": len(ds), "kind": guess_kind(ds.column_names)}
        t.add_row(escape(name), out[name]["kind"] or "-", f"{len(ds):,}", _counts_text(_counts(ds, "domain")),
                  _counts_text(_counts(ds, "language")))
    console.print(t)
    console.print(f"[dim]look at one: r1 data inspect {escape(str(path / next(iter(out))))}[/]")
    return out


# --- export ----------------------------------------------------------------------------------


def export(path: Path, to: Path, force: bool = False, split: str | None = None) -> Path:
    """Write any loadable input as one .jsonl or .parquet file."""
    to = Path(to)
    writer = EXPORTS.get(to.suffix.lower())
    if writer is None:
        raise UserError(f"--to {to}: give a file name ending in {' or '.join(EXPORTS)}")
    _check_to(to, force)
    if to.is_dir():
        raise UserError(f"--to {to} is a directory: give a file name ending in {' or '.join(EXPORTS)}")
    ds = load_table(path, "DATASET", split)
    _write_file(ds, writer, to)
    _say(f"wrote {len(ds):,} rows to {to}")
    return to


# --- import ----------------------------------------------------------------------------------


def import_(src: Path, to: Path, fmt: str = "jsonl", kind: str | None = None, skip_bad: bool = False,
            force: bool = False, split: str | None = None, maps: list[str] | None = None) -> Path:
    """A public-format (or canonical) dataset -> an r1 dataset dir in canonical columns (or, for a --to
    ending in .jsonl / .parquet, one file of them)."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    if fmt == "messages" and kind not in (None, "prompts", "sft"):
        raise UserError(f"--format messages makes prompts (default) or sft rows, not {kind}")
    if fmt not in ("jsonl", "messages") and kind not in (None, "prompts"):
        raise UserError(f"--format {fmt} makes prompts; leave out --kind {kind}")
    src = check_input(src, "SRC")
    to = Path(to)
    writer = EXPORTS.get(to.suffix.lower())
    _check_to(to, force)
    if writer is not None and to.is_dir():
        raise UserError(f"--to {to} is a directory: give a new dataset dir, or a file name ending in {' or '.join(EXPORTS)}")
    ds = rename(load_table(src, "SRC", split), maps, src)
    ds, skipped = convert(ds, fmt, src, skip_bad=skip_bad, kind=kind)
    kind = kind or guess_kind(ds.column_names)
    if kind is None:
        raise UserError(f"SRC {src} has none of the canonical columns (it has {', '.join(ds.column_names)}): "
                        f"import it with {suggest(ds.column_names)}")
    ds = validate(ds, kind, src)
    counts = {"rows": len(ds), "skipped": skipped, "by_domain": _counts(ds, "domain"),
              "by_language": _counts(ds, "language")}
    if kind == "sft":  # r1 coldstart takes R1-format replies only; r1 sft plain ones too
        counts["r1_format"] = sum(is_r1_format(m[-1]["content"]) for m in ds["messages"])
    config = {"format": fmt, "kind": kind, "skip_bad": skip_bad, "split": split, "map": list(maps or [])}
    if writer is not None:
        _write_file(ds, writer, to)
    else:
        with stage_output(to, kind="dataset", stage="data-import", config=config, inputs=[src], force=force) as run:
            save_dataset(ds, run.partial)
            run.counts.update(counts)
    what = "rows without a final answer" if fmt in ("gsm8k", "math") else "rows that do not convert"
    note = f" ({skipped} {what} skipped)" if skipped else ""
    _say(f"imported {len(ds):,} {kind} rows from {src} into {to}{note}")
    if kind == "sft":
        _say(f"{counts['r1_format']:,} of {len(ds):,} end in an R1-format reply (<think>\\n...\\n</think>\\n + summary): "
             + ("r1 coldstart takes them" if counts["r1_format"] == len(ds) else
                "r1 coldstart needs every row so; r1 sft takes plain replies too"))
    return to


def _write_file(ds, writer, to: Path) -> None:
    """One file, written as FILE.partial and renamed when complete."""
    part = partial_path(to)
    try:
        writer(ds, part)
        os.replace(part, to)
    finally:
        part.unlink(missing_ok=True)


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


# --- filter ----------------------------------------------------------------------------------------


def filter_(path: Path | None, to: Path, *, source: Path | None = None, pass_rate: str | None = None,
            max_prompt_tokens: int | None = None, model: Path | None = None, template: str = "r1",
            force: bool = False) -> dict:
    """`r1 data filter`: by measured pass rate (--from, --pass-rate) or by prompt length (--max-prompt-tokens, --model)."""
    if max_prompt_tokens is not None:
        if source is not None or pass_rate is not None:
            raise UserError("give --max-prompt-tokens or --from/--pass-rate, not both: filter twice to do both")
        if model is None or path is None:
            raise UserError("--max-prompt-tokens needs the prompts (DATASET) and --model (whose tokenizer measures them)")
        return filter_prompt_tokens(path, model, max_prompt_tokens, to, template=template, force=force)
    if source is None or pass_rate is None:
        raise UserError("r1 data filter needs --from EVAL_DIR --pass-rate MIN..MAX, or --max-prompt-tokens N --model M")
    return filter_pass_rate(path, source, pass_rate, to, force=force)


# --- filter by pass rate -----------------------------------------------------------------------------


def parse_range(text: str) -> tuple[float, float]:
    """`MIN..MAX` (shares in 0..1, MIN <= MAX) -> (MIN, MAX)."""
    try:
        lo, hi = (float(x) for x in text.split(".."))
    except ValueError:
        raise UserError(f"--pass-rate {text!r} must look like MIN..MAX, e.g. 0.1..0.9") from None
    if not 0 <= lo <= hi <= 1:
        raise UserError(f"--pass-rate {text!r} must have 0 <= MIN <= MAX <= 1")
    return lo, hi


def _eval_rates(rows) -> tuple[dict, dict]:
    """{prompt id: mean reward_accuracy over its samples (None = accuracy does not apply)} and
    {prompt id: the prompt row (the eval row minus its per-sample columns)}, from an r1 eval dir."""
    scores: dict[str, list] = {}
    prompts: dict[str, dict] = {}
    for r in rows:
        key = str(r["id"])
        if key not in prompts:
            prompts[key] = {c: v for c, v in r.items() if c not in ADDED}
        if r.get("reward_accuracy") is not None:
            scores.setdefault(key, []).append(float(r["reward_accuracy"]))
    return {k: (sum(scores[k]) / len(scores[k]) if scores.get(k) else None) for k in prompts}, prompts


def _reject_sample_rates(ds, manifest: dict, prompts, source: Path) -> dict:
    """{prompt id: samples that passed every check / n} for the prompts the reject-sample run covered
    (the first `limit` rows, in its shard's chunks); a covered prompt without rows passed none."""
    cfg = manifest.get("config", {})
    if cfg.get("mode") != "reasoning":
        raise UserError(f"--from {source} is a --mode general reject-sample dir: pass rates come from --mode reasoning")
    if "passed" not in ds.column_names:
        raise UserError(f"--from {source} was made before r1 reject-sample recorded each prompt's pass count: "
                        "run it again, or measure with r1 eval")
    n = int(cfg["n"])
    passed = {str(s): p for s, p in zip(ds["source_id"], ds["passed"])}
    total = min(cfg.get("limit") or len(prompts), len(prompts))
    chunk, shards, index = int(cfg["chunk_size"]), int(cfg.get("num_shards", 1)), int(cfg.get("shard_index", 0))
    ids = [str(i) for i in prompts["id"]]
    rates = {}
    for i in range(total):
        if (i // chunk) % shards == index:
            rates[ids[i]] = passed.get(ids[i], 0) / n
    return rates


def filter_pass_rate(path: Path | None, source: Path, pass_rate: str, to: Path, force: bool = False) -> dict:
    """Keep the prompts whose measured pass rate lies in [MIN, MAX] (the offline counterpart of DAPO's
    dynamic sampling: a prompt every sample solves, or none does, teaches GRPO nothing)."""
    lo, hi = parse_range(pass_rate)
    source = check_input(source, "--from")
    manifest = read_manifest(source) or {}
    stage = manifest.get("stage")
    if stage not in ("eval", "reject-sample"):
        raise UserError(f"--from {source} is not an r1 eval or r1 reject-sample dir (its manifest says stage "
                        f"{stage!r}): measure pass rates with r1 eval --k N, or r1 reject-sample")
    if path is not None:
        path = check_input(path, "DATASET")
    elif stage == "reject-sample":
        raise UserError("an r1 reject-sample dir holds SFT rows, not the prompts: give the prompt DATASET it sampled")
    _check_to(to, force)
    # an r1 eval / reject-sample dir is a save_to_disk dir; a reject-sample dir may have no rows (none passed)
    measured = load_from_disk(str(source), keep_in_memory=False)
    if stage == "eval":
        rates, rebuilt = _eval_rates(measured)
        rebuilt_ds = dataset(pa.Table.from_pylist(list(rebuilt.values())))
        prompts = load_prompts(path, "DATASET") if path is not None else rebuilt_ds
    else:
        prompts = load_prompts(path, "DATASET")
        rates = _reject_sample_rates(measured, manifest, prompts, source)
    ids = [str(i) for i in prompts["id"]]
    rate = [rates.get(i) for i in ids]
    keep = [k for k, r in enumerate(rate) if r is not None and lo <= r <= hi]
    counts = {"rows_in": len(ids), "kept": len(keep), "unmeasured": sum(r is None for r in rate),
              "below": sum(r is not None and r < lo for r in rate),
              "above": sum(r is not None and r > hi for r in rate)}
    # an empty output is of no use to any stage (they refuse empty datasets): say why instead of writing it
    if counts["unmeasured"] == len(ids) and not any(i in rates for i in ids):
        raise UserError(f"--from {source} measured none of the {len(ids):,} prompts of {path} (no id in common, e.g. "
                        f"{ids[0]!r}): give the DATASET that r1 {stage} ran on")
    if counts["unmeasured"] == len(ids):
        raise UserError(f"--from {source} has no pass rate for any prompt (its accuracy reward applied to none: no "
                        "reference answers, or general prompts): measure on prompts with an `answer` column")
    if not keep:
        raise UserError(f"no prompt has a pass rate in [{lo}, {hi}] ({counts['below']:,} below, {counts['above']:,} "
                        f"above): widen --pass-rate")
    out = prompts.select(keep, keep_in_memory=True)
    out = out.add_column("pass_rate", [rate[k] for k in keep]) if "pass_rate" not in out.column_names else out
    config = {"pass_rate": [lo, hi], "from": str(source), "from_stage": stage}
    with stage_output(to, kind="dataset", stage="data-filter", config=config,
                      inputs=[source] + ([path] if path is not None else []), force=force) as run:
        save_dataset(out, run.partial)
        run.counts.update(counts, by_domain=_counts(out, "domain"))
    _say(f"kept {counts['kept']:,} of {counts['rows_in']:,} prompts with pass rate in [{lo}, {hi}] "
         f"({counts['below']:,} below, {counts['above']:,} above, {counts['unmeasured']:,} unmeasured) in {to}")
    return counts


# --- filter by prompt length -------------------------------------------------------------------


def filter_prompt_tokens(path: Path, model: Path, max_tokens: int, to: Path, template: str = "r1",
                         force: bool = False) -> dict:
    """Keep the prompts of at most `max_tokens` tokens as `model` sees them (its chat template, or the
    r1zero text): the prompts that leave a stage's completion budget room in the model's context."""
    if max_tokens < 1:
        raise UserError(f"--max-prompt-tokens {max_tokens} must be >= 1")
    if template not in TEMPLATES:
        raise UserError(f"--template {template!r} is not one of {', '.join(TEMPLATES)}")
    path = check_input(path, "DATASET")
    model = check_input(model, "--model")
    _check_to(to, force)
    prompts = load_prompts(path, "DATASET")
    tokenizer = load_tokenizer(model)
    lengths = count_tokens(tokenizer, [apply_template(p, template) for p in prompts["prompt"]])
    keep = [i for i, n in enumerate(lengths) if n <= max_tokens]
    if not keep:
        raise UserError(f"no prompt of {path} has at most {max_tokens} tokens (the shortest has {min(lengths)}): "
                        "raise --max-prompt-tokens")
    counts = {"rows_in": len(lengths), "kept": len(keep), "too_long": len(lengths) - len(keep),
              "longest_kept_tokens": max(lengths[i] for i in keep)}
    out = prompts.select(keep, keep_in_memory=True)
    config = {"max_prompt_tokens": max_tokens, "model": str(model), "template": template}
    with stage_output(to, kind="dataset", stage="data-filter", config=config, inputs=[path, model], force=force) as run:
        save_dataset(out, run.partial)
        run.counts.update(counts, by_domain=_counts(out, "domain"))
    _say(f"kept {counts['kept']:,} of {counts['rows_in']:,} prompts of at most {max_tokens} tokens "
         f"({counts['too_long']:,} longer) in {to}")
    return counts
