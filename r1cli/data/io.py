"""Load any dataset a user may hand to r1 as a `datasets.Dataset`; save and export one.

    from r1cli.data import load_table
    ds = load_table("gsm8k.jsonl")   # or .json, .parquet, .arrow, an HF save_to_disk dir,
                                     # an r1 dataset dir, or a dir of jsonl/parquet/arrow files
    ds = load_table("gsm8k/main", split="test")   # a dataset as downloaded from the Hub

A dataset downloaded from the Hub is a dir of split-named files: `train.jsonl`, `test-00000-of-00002.parquet`
(one split in shards), maybe under `data/` or a config dir such as `main/`. A dir with several splits is
read as the one named by `split`, and refused without it (naming the splits); the shards of a split are
read together, and a missing shard is an error. A dir of files with other names is read as one dataset.

A bad input is a one-line UserError naming the file (and the line, for JSONL). Saved dataset
dirs (HF and r1) and .arrow files are memory-mapped, not read into RAM; JSONL and Parquet
are read into an in-memory Arrow table (compact; no Python objects per row on the fast path).

Why not `Dataset.from_json`: it writes a cache copy of every file under ~/.cache, its
errors do not say which line is wrong, and it turns columns whose type changes between rows
into opaque JSON strings. Here pyarrow's multi-threaded reader takes the file first (100k
rows in well under a second); only when it refuses the file is it read again line by line
in Python, to name the bad line, or to read numbers mixed with strings as strings in the
columns where users really do mix them (numeric answers and ids).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.json as paj
import pyarrow.parquet as pq
from datasets import Dataset, load_from_disk

from r1cli.artifacts import MANIFEST, PARTIAL, check_input, read_manifest
from r1cli.errors import UserError

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow")
# a column here may hold JSON numbers on some rows and strings on others: read it as strings
NUMBERS_AS_TEXT = ("answer", "id")
_CHUNK_ROWS = 20_000
_BLOCK_SIZE = 8 << 20  # pyarrow needs a whole row inside one block; long-CoT rows can be 100s of kB
# the Hub's file names: {split}[-{shard}-of-{shards}].{ext}, the split starting with one of the words
# `datasets` recognises (train_sft and test_gen are splits too); other names are not split-named
_SPLIT_WORDS = ("train", "training", "validation", "valid", "val", "dev", "test", "testing", "eval", "evaluation")
_SPLIT_NAME = re.compile(r"^(?P<split>(?:%s)(?:[-_.][A-Za-z0-9_.-]*?)??)(?:-(?P<shard>\d{5})-of-(?P<of>\d{5}))?$"
                         % "|".join(_SPLIT_WORDS), re.IGNORECASE)
# JSON files of a Hub repo or a saved dataset that describe the data and are not rows of it
_NOT_DATA = ("dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json", MANIFEST)


def dataset(table: pa.Table) -> Dataset:
    """An in-memory Dataset of `table`. The fingerprint is random instead of a hash of all the
    data (0.15 s per 100k rows): it names cache files, and in-memory datasets write none."""
    return Dataset(table, fingerprint=uuid.uuid4().hex)


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
    return msg[:160]


def _name(what: str, p: Path) -> str:
    return f"{what} {p}".strip()


# --- one entry point ---------------------------------------------------------------------


def load_table(path: str | os.PathLike, what: str = "--data", split: str | None = None) -> Dataset:
    """Any supported input as a Dataset; UserError (one line) on a bad or empty input. `split` picks
    one split of a dir that holds several (Hub files, a saved DatasetDict)."""
    p = check_input(path, what)
    if any(part.endswith(PARTIAL) for part in p.absolute().parts[:-1]):
        raise UserError(f"{_name(what, p)} is inside an unfinished stage output (*{PARTIAL}): finish it with --resume or use a finished dir")
    if p.is_dir():
        ds = _load_dir(p, what, split)
    else:
        if split is not None and _split_of(p) != split:
            raise UserError(f"--split {split}: {_name(what, p)} is one file (split {_split_of(p) or 'unnamed'}): "
                            "give the dir that holds the splits, or leave out --split")
        ds = _load_file(p, what)
    if len(ds) == 0:
        raise UserError(f"{_name(what, p)} has no rows: give a dataset with at least one row")
    return ds


def _load_file(p: Path, what: str) -> Dataset:
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return dataset(read_json_table(p, what))
    if suffix == ".parquet":
        try:
            return dataset(pq.read_table(p))
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"{_name(what, p)} is not a readable Parquet file ({_short(e)}): re-export it") from None
    if suffix == ".arrow":
        return _read_arrow(p, what)
    raise UserError(f"{_name(what, p)} has an unknown file type {p.suffix or '(none)'!r}: "
                    "give .jsonl, .json, .parquet or .arrow, or a dataset dir")


def _read_arrow(p: Path, what: str) -> Dataset:
    try:  # the IPC stream format datasets writes: memory-mapped, zero copy
        return Dataset.from_file(str(p))
    except (pa.ArrowException, OSError):
        pass
    try:  # the IPC file format (Feather v2, pyarrow.ipc.new_file)
        with pa.memory_map(str(p)) as src:
            return dataset(pa.ipc.open_file(src).read_all())
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{_name(what, p)} is not a readable Arrow file ({_short(e)}): re-export it") from None


def _load_dir(p: Path, what: str, split: str | None = None) -> Dataset:
    m = read_manifest(p)
    if m is not None and m.get("kind") not in ("dataset", "eval"):
        raise UserError(f"{_name(what, p)} is a {m.get('kind')}, not a dataset: give a dataset dir or file")
    if m is None and (p / "config.json").is_file():
        raise UserError(f"{_name(what, p)} is a model checkpoint (it has config.json), not a dataset")
    if (p / "dataset_dict.json").is_file():
        splits = sorted(d.name for d in p.iterdir() if d.is_dir())
        if split is not None and split in splits:
            return load_table(p / split, what)
        if not splits:
            raise UserError(f"{_name(what, p)} is an empty DatasetDict")
        raise UserError(_splits_message(p, what, splits, split))
    if (p / "state.json").is_file():
        try:
            ds = load_from_disk(str(p))
        except Exception as e:  # datasets raises many kinds here; all mean "not a readable saved dataset"
            raise UserError(f"{_name(what, p)} is not a readable saved dataset ({_short(e)}): re-create it") from None
        if not isinstance(ds, Dataset):
            raise UserError(f"{_name(what, p)} holds several splits: give one of them")
        if split is not None:
            raise UserError(f"--split {split}: {_name(what, p)} is one saved dataset, not a dir of splits: leave out --split")
        return ds
    files = _data_files(p) or (_data_files(p / "data") if (p / "data").is_dir() else [])
    if not files:
        subs = sub_datasets(p)
        if subs:
            raise UserError(f"{_name(what, p)} holds several datasets ({', '.join(subs)}): give one of them, e.g. {p / subs[0]}")
        configs = {d.name: _splits(_data_files(d) or (_data_files(d / "data") if (d / "data").is_dir() else []))
                   for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".")}
        configs = {name: groups for name, groups in configs.items() if groups}
        if configs:
            listing = "; ".join(f"{name} ({', '.join(groups)})" for name, groups in configs.items())
            name, groups = next(iter(configs.items()))
            example = f"{p / name}" + (f" --split {_example_split(groups)}" if len(groups) > 1 else "")
            raise UserError(f"{_name(what, p)} has no data files of its own; its subdirs hold configs {listing}: "
                            f"give one, e.g. {example}")
        raise UserError(f"{_name(what, p)} has no data files (*.jsonl, *.json, *.parquet, *.arrow) and is not a saved dataset")
    groups = _splits(files)
    if split is not None:
        if split not in groups:
            raise UserError(f"--split {split}: {_name(what, p)} has no such split; it has {', '.join(groups)}")
        files = groups[split]
    elif len(groups) > 1 and any(_split_of(f) for f in files):
        raise UserError(_splits_message(p, what, list(groups), None))
    _check_shards(files, p, what)
    parts = [_load_file(f, what) for f in files]
    return parts[0] if len(parts) == 1 else concat(parts, [str(f) for f in files])


def _split_of(f: Path) -> str | None:
    """The split a Hub file name gives (`test-00000-of-00002.parquet` -> test); None for other names."""
    m = _SPLIT_NAME.match(f.name[: -len(f.suffix)] if f.suffix else f.name)
    return m.group("split") if m else None


def _splits(files: list[Path]) -> dict[str, list[Path]]:
    """{split: its files, in shard order}; a file that is not split-named is a group of its own name."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(_split_of(f) or f.name, []).append(f)
    return groups


def _example_split(names) -> str:
    return next((s for s in ("test", "validation", "train") if s in names), sorted(names)[0])


def _splits_message(p: Path, what: str, splits: list[str], split: str | None) -> str:
    asked = f"--split {split} is not one of them; " if split is not None else ""
    return (f"{_name(what, p)} holds several splits ({', '.join(splits)}): {asked}read one with --split "
            f"(r1 data import, inspect, export), e.g. r1 data import {p} --split {_example_split(splits)} --to DIR")


def _check_shards(files: list[Path], p: Path, what: str) -> None:
    """Every shard of a sharded split is there (`-00001-of-00004`): a download cut short is not a dataset."""
    shards: dict[str, tuple[int, set[int]]] = {}
    for f in files:
        m = _SPLIT_NAME.match(f.name[: -len(f.suffix)])
        if m and m.group("of"):
            of, seen = shards.setdefault(m.group("split"), (int(m.group("of")), set()))
            seen.add(int(m.group("shard")))
    for name, (of, seen) in shards.items():
        missing = sorted(set(range(of)) - seen)
        if missing:
            raise UserError(f"{_name(what, p)} has {len(seen)} of the {of} shards of split {name} (shard {missing[0]:05d} "
                            "is missing): finish the download")


def sub_datasets(p: Path) -> list[str]:
    """Names of the dataset dirs inside `p` (as `r1 toy data OUT` writes them)."""
    return sorted(d.name for d in p.iterdir() if d.is_dir() and any((d / f).exists() for f in ("state.json", MANIFEST)))


def _data_files(p: Path) -> list[Path]:
    return sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in FILE_SUFFIXES
                  and f.name not in _NOT_DATA and not f.name.startswith("."))


def holds_datasets(p: Path) -> bool:
    """True for a dir with no dataset of its own but dataset dirs inside (`r1 toy data OUT`)."""
    m = read_manifest(p)
    return (p.is_dir() and (m is None or m.get("kind") == "dataset") and not (p / "state.json").exists()
            and not _data_files(p) and bool(sub_datasets(p)))


def concat(parts: list[Dataset], names: list[str]) -> Dataset:
    """Rows of every part in order; a column missing from a part is null there."""
    tables = [table_of(ds).replace_schema_metadata(None) for ds in parts]
    try:
        return dataset(pa.concat_tables(tables, promote_options="permissive"))
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise UserError(f"cannot join {', '.join(names)}: a column has different types in them ({_short(e)})") from None


def table_of(ds: Dataset) -> pa.Table:
    """The rows of a Dataset as a pyarrow Table (a zero-copy slice unless rows were selected)."""
    return ds.with_format("arrow")[:]


# --- JSON lines ------------------------------------------------------------------------------


def read_json_table(p: Path, what: str = "--data") -> pa.Table:
    """A JSON-lines file (or a file holding one JSON array of objects) as an Arrow table."""
    with open(p, "rb") as fh:
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise UserError(f"{_name(what, p)} is empty: give a dataset with at least one row")
    if head.startswith(b"["):
        try:
            rows = json.loads(p.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{_name(what, p)} is not valid JSON ({_short(e)}): fix it, or give JSON lines") from None
        return _rows_to_table(((f"item {i}", r) for i, r in enumerate(rows)), p, what)
    try:
        table = paj.read_json(p, read_options=paj.ReadOptions(block_size=_BLOCK_SIZE))
        # pyarrow's JSON reader does not check UTF-8 (a Latin-1 file loads, then fails on first
        # use, after the model loaded): full validation does, in milliseconds per 100k rows
        table.validate(full=True)
        # pyarrow reads "2020-01-01" as a timestamp, and there is no switch to stop it
        if not any(_has_timestamp(f.type) for f in table.schema):
            return table
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return _rows_to_table(_json_lines(p, what), p, what)


def _has_timestamp(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_timestamp(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_timestamp(t.value_type)
    return False


def _json_lines(p: Path, what: str):
    """(where, object) per non-blank line; UserError naming the line that is not JSON."""
    row = 0
    try:
        with open(p, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{_name(what, p)} line {lineno} is not JSON ({e.msg}): fix or remove that line "
                                    "(JSON lines: one object per line)") from None
                yield f"line {lineno} (row {row})", obj
                row += 1
    except UnicodeDecodeError as e:
        raise UserError(f"{_name(what, p)} is not UTF-8 text ({_short(e)}): re-save it as UTF-8") from None


def _kind(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def _as_text(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) or v is None or isinstance(v, bool) else str(v)


def _rows_to_table(rows, p: Path, what: str) -> pa.Table:
    """Python rows -> Arrow, a chunk at a time; a column's type may not change between rows."""
    first: dict[str, tuple[str, str]] = {}  # column -> (kind, where first seen)
    text_cols: set[str] = set()
    tables, chunk = [], []
    for where, obj in rows:
        if not isinstance(obj, dict):
            raise UserError(f"{_name(what, p)} {where} is a JSON {_kind(obj)}, not an object with named columns")
        for col, v in obj.items():
            if v is None:
                continue
            k = _kind(v)
            seen = first.setdefault(col, (k, where))
            if seen[0] != k:
                if col in NUMBERS_AS_TEXT and {k, seen[0]} == {"number", "string"}:
                    text_cols.add(col)
                else:
                    raise UserError(f"{_name(what, p)} {where}: column {col!r} is a {k}, but {seen[1]} has a {seen[0]}: "
                                    "give every row the same type")
        chunk.append(obj)
        if len(chunk) >= _CHUNK_ROWS:
            tables.append(_chunk_table(chunk, text_cols, p, what))
            chunk = []
    if chunk or not tables:
        tables.append(_chunk_table(chunk, text_cols, p, what))
    # a chunk read before the mix showed up holds numbers: make those strings too
    tables = [_cast_text(t, text_cols) for t in tables]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise UserError(f"{_name(what, p)}: rows have different structures ({_short(e)}): give every row the same structure") from None


def _chunk_table(chunk: list[dict], text_cols: set[str], p: Path, what: str) -> pa.Table:
    if text_cols:
        chunk = [{c: (_as_text(v) if c in text_cols else v) for c, v in r.items()} for r in chunk]
    try:
        return pa.Table.from_pylist(chunk)
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise UserError(f"{_name(what, p)}: rows have different structures ({_short(e)}): give every row the same structure") from None


def _cast_text(t: pa.Table, text_cols: set[str]) -> pa.Table:
    for col in text_cols & set(t.column_names):
        i = t.column_names.index(col)
        if not pa.types.is_string(t.schema.field(i).type):
            t = t.set_column(i, col, t.column(i).cast(pa.string()))
    return t


# --- writing ---------------------------------------------------------------------------------


def save_dataset(ds: Dataset, directory: str | os.PathLike) -> None:
    """`save_to_disk` layout, so `datasets.load_from_disk(directory)` works (and so does load_table)."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    # a progress bar is noise for a save that takes a blink; keep it for big ones
    quiet = len(ds) < 200_000 and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        # datasets writes no shard at all for 0 rows, and load_from_disk then fails: ask for one
        ds.save_to_disk(str(directory), num_shards=1 if len(ds) == 0 else None)
    finally:
        if quiet:
            enable_progress_bars()


def write_jsonl(ds: Dataset, path: str | os.PathLike, batch_size: int = 2000) -> None:
    """One JSON object per row, UTF-8 as it is (Chinese stays readable), a batch at a time."""
    with open(path, "w", encoding="utf-8") as fh:
        for batch in ds.with_format("arrow").iter(batch_size=batch_size):
            fh.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in batch.to_pylist())


def write_parquet(ds: Dataset, path: str | os.PathLike, batch_size: int = 10_000) -> None:
    writer = None
    try:
        for batch in ds.with_format("arrow").iter(batch_size=batch_size):
            writer = writer or pq.ParquetWriter(str(path), batch.schema)
            writer.write_table(batch)
    finally:
        if writer is not None:
            writer.close()
