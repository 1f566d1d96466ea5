"""The canonical columns (DESIGN.md) and the check that a dataset has them.

    ds = validate(load_table(path), "prompts", path)      # or completions, sft, preferences, safety

A wrong dataset is a one-line UserError naming the file, the row (0-based index) and the
column. Fixable differences are fixed instead: numeric `answer`/`id` become strings, `tests`
given as a JSON string become a list, a `completion` given as one message becomes a list
of one, boolean `label`s become 0/1. Columns a stage does not know are carried through.

A row without an `id` gets one made up from its content: "h-" + the first 16 hex digits of
the sha256 of the row as JSON (keys sorted, after the fixes above). So the same row gets the
same id in any file, order or shard, `r1 data merge` drops true duplicates only, and two
datasets without ids can be merged without their ids colliding.

A row longer than R1_MAX_ROW_CHARS characters (all its text together; default 1,000,000, an
environment variable so that every stage and `r1 data` command gets it) is refused before any model
loads: no prompt or CoT is that long, and tokenizing tens of MB kills the process instead.

Checks run on Arrow columns (pyarrow.compute), not Python rows: 100k rows take milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from r1cli.data.formats import suggest
from r1cli.data.io import dataset, table_of
from r1cli.errors import UserError

KINDS = ("prompts", "completions", "sft", "preferences", "safety")
DOMAINS = ("math", "code", "stem", "logic", "general")
ROLES = ("system", "user", "assistant", "tool", "developer")
REQUIRED = {
    "prompts": ("prompt",),
    "completions": ("prompt", "completion"),
    "sft": ("messages",),
    "preferences": ("prompt", "chosen", "rejected"),
    "safety": ("prompt", "completion", "label"),
}
MESSAGES = "a list of {role, content} messages"
MAX_ROW_CHARS = 1_000_000


def guess_kind(columns) -> str | None:
    """What a dataset with these columns holds (None when it is none of the canonical kinds)."""
    cols = set(columns)
    for kind in ("sft", "preferences", "safety", "completions", "prompts"):
        if set(REQUIRED[kind]) <= cols:
            return kind
    return None


# --- describing what is wrong ---------------------------------------------------------------


def describe(t: pa.DataType) -> str:
    """An Arrow type in a user's words: "a number", "a list of strings", ..."""
    if _is_list(t):
        if pa.types.is_struct(t.value_type):
            return f"a list of objects with fields {', '.join(f.name for f in t.value_type)}"
        return f"a list of {_noun(t.value_type)}s"
    if pa.types.is_struct(t):
        return f"an object with fields {', '.join(f.name for f in t)}"
    if pa.types.is_null(t):
        return "empty (null)"
    noun = _noun(t)
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _noun(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if _is_text(t):
        return "string"
    if _is_list(t):
        return "list"
    if pa.types.is_struct(t):
        return "object"
    return str(t)


def _is_text(t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_list(t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _first(mask) -> int | None:
    """Index of the first True in a boolean (chunked) array; nulls count as False."""
    i = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if i < 0 else i


class _Checker:
    """Checks the columns of one table; `fixes` collects replacement columns."""

    def __init__(self, table: pa.Table, where: str):
        self.t, self.where, self.fixes = table, where, {}

    def fail(self, row, col, msg, todo):
        at = f" row {row}" if row is not None else ""
        raise UserError(f"{self.where}{at}: column {col!r} {msg}: {todo}")

    def type_error(self, col, want):
        c = self.t.column(col)
        self.fail(_first(c.is_valid()) or 0, col, f"is {describe(c.type)}", f"it must be {want}")

    def no_nulls(self, col, want):
        row = _first(self.t.column(col).is_null())
        if row is not None:
            self.fail(row, col, "is empty (null)", f"give every row {want}")

    # --- column shapes ---

    def text(self, col, want="a string", required=True, non_empty=False):
        c = self.t.column(col)
        if pa.types.is_null(c.type):
            if required:
                self.fail(0, col, "is empty (null)", f"give every row {want}")
            return
        if not _is_text(c.type):
            self.type_error(col, want)
        if required:
            self.no_nulls(col, want)
        if non_empty:
            row = _first(pc.equal(pc.utf8_trim_whitespace(c), ""))
            if row is not None:
                self.fail(row, col, "is an empty string", f"give every row {want}")

    def messages(self, col, last_assistant=False):
        """A list of {role, content} messages per row (non-empty, known roles, string content)."""
        c = self.t.column(col)
        t = c.type
        if not (_is_list(t) and pa.types.is_struct(t.value_type)):
            self.type_error(col, MESSAGES)
        fields = {f.name: f.type for f in t.value_type}
        if "role" not in fields or "content" not in fields:
            hint = " (ShareGPT from/value data: import it with r1 data import --format messages)" if "from" in fields else ""
            self.fail(_first(c.is_valid()) or 0, col, f"holds messages with fields {', '.join(fields)}",
                      f"each message needs role and content{hint}")
        if not _is_text(fields["role"]) or not (_is_text(fields["content"]) or pa.types.is_null(fields["content"])):
            self.fail(0, col, f"holds messages whose role is {describe(fields['role'])} and content "
                      f"{describe(fields['content'])}", "both must be strings")
        self.no_nulls(col, MESSAGES)
        offset = 0
        for chunk in c.chunks:
            self._message_chunk(col, chunk, offset, last_assistant)
            offset += len(chunk)

    def _message_chunk(self, col, chunk, offset, last_assistant):
        row = _first(pc.equal(pc.list_value_length(chunk), 0))
        if row is not None:
            self.fail(offset + row, col, "is an empty list", f"give every row {MESSAGES}")
        flat, parents = chunk.flatten(), pc.list_parent_indices(chunk)
        role, content = flat.field("role"), flat.field("content")
        j = _first(flat.is_null())
        if j is not None:
            self.fail(offset + parents[j].as_py(), col, "holds a null message", "give every message a role and content")
        j = _first(pc.invert(pc.is_in(role, pa.array(ROLES))))  # a null role is not in ROLES either
        if j is not None:
            self.fail(offset + parents[j].as_py(), col, f"has a message with role {role[j].as_py()!r}",
                      f"use one of {', '.join(ROLES)}")
        j = _first(content.is_null())
        if j is not None:
            self.fail(offset + parents[j].as_py(), col, "has a message without content", "give every message a content string")
        if last_assistant and len(flat):
            # the last message of a row is where the parent row index changes (rows are non-empty)
            ends = pa.concat_arrays([pc.not_equal(parents[:-1], parents[1:]), pa.array([True])])
            last_roles = role.filter(ends)
            row = _first(pc.not_equal(last_roles, "assistant"))
            if row is not None:
                self.fail(offset + row, col, f"ends with a {last_roles[row].as_py()!r} turn",
                          "the last message must be the assistant's reply")

    def prompt(self, col="prompt"):
        t = self.t.column(col).type
        if _is_text(t) or pa.types.is_null(t):
            self.text(col, f"a string or {MESSAGES}", non_empty=True)
        elif _is_list(t) and pa.types.is_struct(t.value_type):
            self.messages(col)
        else:
            self.type_error(col, f"a string or {MESSAGES}")

    def reply(self, col):
        """A completion / chosen / rejected: a string, a list of messages, or one message (wrapped)."""
        c = self.t.column(col)
        if _is_text(c.type) or pa.types.is_null(c.type):
            return self.text(col, f"a string or {MESSAGES}")
        if pa.types.is_struct(c.type):
            self.no_nulls(col, "a message")
            c = pa.chunked_array([pa.ListArray.from_arrays(pa.array(range(len(ch) + 1), pa.int32()), ch)
                                  for ch in c.chunks], pa.list_(c.type))
            self.t = self.t.set_column(self.t.column_names.index(col), col, c)
            self.fixes[col] = c
        if not _is_list(c.type):
            self.type_error(col, f"a string or {MESSAGES}")
        self.messages(col)

    def as_text(self, col, want):
        """A string column; numbers (e.g. GSM8K's integer answers) become strings."""
        c = self.t.column(col)
        if pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_decimal(c.type):
            self.fixes[col] = c.cast(pa.string())  # 3.0 -> "3", 12 -> "12"
        elif not (_is_text(c.type) or pa.types.is_null(c.type)):
            self.type_error(col, want)

    def domain(self, col="domain"):
        self.text(col, "one of " + ", ".join(DOMAINS), required=False)
        c = self.t.column(col)
        if pa.types.is_null(c.type):
            return
        # an empty domain is allowed: such a row is excluded from no reward (DESIGN.md)
        row = _first(pc.and_(pc.invert(pc.is_in(c, pa.array(DOMAINS + ("",)))), c.is_valid()))
        if row is not None:
            self.fail(row, col, f"is {c[row].as_py()!r}", f"use one of {', '.join(DOMAINS)} (or leave it empty)")

    def tests(self, col="tests"):
        c = self.t.column(col)
        want = 'a list of {"input", "output"} (or that list as a JSON string)'
        if pa.types.is_null(c.type):
            return
        if _is_list(c.type) and pa.types.is_struct(c.type.value_type):
            if not {"input", "output"} <= {f.name for f in c.type.value_type}:
                self.type_error(col, want)
            return
        if not _is_text(c.type):
            self.type_error(col, want)
        parsed = []
        for i, s in enumerate(c.to_pylist()):
            if s is None:
                parsed.append(None)
                continue
            try:
                v = json.loads(s)
            except json.JSONDecodeError as e:
                self.fail(i, col, f"is not JSON ({e.msg})", f"give {want}")
            if not isinstance(v, list) or not all(isinstance(x, dict) and {"input", "output"} <= set(x) for x in v):
                self.fail(i, col, "is not a list of {input, output} objects", f"give {want}")
            parsed.append([{"input": _str(x["input"]), "output": _str(x["output"])} for x in v])
        self.fixes[col] = pa.chunked_array([pa.array(parsed, pa.list_(pa.struct([("input", pa.string()),
                                                                                   ("output", pa.string())])))])

    def label(self, col="label"):
        c = original = self.t.column(col)
        want = "1 (safe) or 0 (unsafe)"
        if pa.types.is_boolean(c.type):
            c = c.cast(pa.int64())
        elif pa.types.is_floating(c.type) or pa.types.is_integer(c.type):
            pass
        else:
            self.type_error(col, want)
        self.no_nulls(col, want)
        row = _first(pc.invert(pc.is_in(c, pa.array([0, 1], c.type))))
        if row is not None:
            self.fail(row, col, f"is {c[row].as_py()!r}", f"it must be {want}")
        if original.type != pa.int64():
            self.fixes[col] = c.cast(pa.int64())


def _str(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


# --- validate -----------------------------------------------------------------------------------


def validate(ds: Dataset, kind: str, path="", required=()) -> Dataset:
    """`ds` checked against the canonical columns of `kind`, with fixable differences fixed and
    ids made up where absent. UserError naming file, row and column otherwise."""
    if kind not in REQUIRED:
        raise ValueError(f"unknown dataset kind {kind!r}; one of {KINDS}")
    where = str(path) or "the dataset"
    if len(ds) == 0:
        raise UserError(f"{where} has no rows: give a dataset with at least one row")
    cols = ds.column_names
    for col in (*REQUIRED[kind], *required):
        if col not in cols:
            fix = (f"import it with r1 data import {where} {suggest(cols, kind)} --to DIR"
                   if kind in ("prompts", "sft") and col in REQUIRED[kind] else "rename the column")
            raise UserError(f"{where} has no column {col!r} ({kind} need {', '.join((*REQUIRED[kind], *required))}; "
                            f"it has {', '.join(cols)}): {fix}")
    check_row_sizes(table_of(ds), where)
    ck = _Checker(table_of(ds), where)
    if "prompt" in cols and kind != "sft":
        ck.prompt()
    if kind == "sft":
        ck.messages("messages", last_assistant=True)
    for col in ("completion", "chosen", "rejected"):
        if col in REQUIRED[kind]:
            ck.reply(col)
    if kind == "safety":
        ck.label()
    for col in ("answer", "id"):
        if col in cols:
            ck.as_text(col, "a string")
    if "domain" in cols:
        ck.domain()
    if "language" in cols:
        ck.text("language", "a language code such as en or zh", required=False)
    if "tests" in cols:
        ck.tests()
    table = ck.t
    for col, arr in ck.fixes.items():
        table = table.set_column(table.column_names.index(col), col, arr)
    table = with_ids(table)
    if table is ck.t and not ck.fixes:
        return ds
    return dataset(table.replace_schema_metadata(None))


# --- size -----------------------------------------------------------------------------------------------


def max_row_chars() -> int:
    """The longest row accepted, in characters: R1_MAX_ROW_CHARS, else MAX_ROW_CHARS."""
    text = os.environ.get("R1_MAX_ROW_CHARS", "").strip()
    if not text:
        return MAX_ROW_CHARS
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"R1_MAX_ROW_CHARS={text!r} must be a whole number of characters >= 1, e.g. 1000000")
    return n


def check_row_sizes(table: pa.Table, where: str) -> None:
    """Refuse a row whose text (every string in it, nested ones too) is longer than max_row_chars()."""
    limit = max_row_chars()
    sizes = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        offset = 0
        for chunk in col.chunks:
            sizes[offset:offset + len(chunk)] += _chars(chunk)
            offset += len(chunk)
    over = np.flatnonzero(sizes > limit)
    if len(over):
        row = int(over[0])
        name = f" (id {table.column('id')[row].as_py()})" if "id" in table.column_names else ""
        more = f" ({len(over)} rows are)" if len(over) > 1 else ""
        raise UserError(f"{where} row {row}{name} has {int(sizes[row]):,} characters of text, more than the limit of "
                        f"{limit:,}{more}: remove such rows, or raise the limit with R1_MAX_ROW_CHARS")


def _chars(arr: pa.Array) -> np.ndarray:
    """Characters of text in each element of `arr` (strings, and strings inside lists and structs)."""
    t = arr.type
    if _is_text(t):
        return pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if _is_list(t):
        inner = _chars(arr.flatten())
        parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
        return np.bincount(parents, weights=inner, minlength=len(arr)).astype(np.int64)
    if pa.types.is_struct(t):
        total = np.zeros(len(arr), dtype=np.int64)
        for i in range(t.num_fields):
            total += _chars(arr.field(i))
        return total
    return np.zeros(len(arr), dtype=np.int64)


def with_ids(table: pa.Table) -> pa.Table:
    """`table` with an `id` for every row: kept where given, made up from the content elsewhere."""
    if "id" in table.column_names:
        ids = table.column("id")
        missing = pc.or_kleene(ids.is_null(), pc.equal(pc.utf8_length(ids.cast(pa.string())), 0))
        if _first(missing) is None:
            return table
        content = table.drop_columns(["id"])
        made = made_up_ids(content)
        given = ids.cast(pa.string()).to_pylist()
        new = [m if g is None or g == "" else g for g, m in zip(given, made)]
        return table.set_column(table.column_names.index("id"), "id", pa.array(new, pa.string()))
    return table.add_column(0, "id", pa.array(made_up_ids(table), pa.string()))


def made_up_ids(table: pa.Table) -> list[str]:
    """"h-" + 16 hex digits of sha256(row as compact JSON, keys sorted), for every row."""
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode
    names = sorted(table.column_names)
    table = table.select(names)
    out = []
    for batch in table.to_batches(max_chunksize=50_000):
        columns = [c.to_pylist() for c in batch.columns]  # column-wise: ~2x faster than row dicts
        out += ["h-" + hashlib.sha256(encode(dict(zip(names, values))).encode()).hexdigest()[:16]
                for values in zip(*columns)]
    return out
