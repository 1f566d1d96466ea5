"""Public dataset formats mapped onto the canonical prompt columns (`r1 data import --format`).

    r1 data import gsm8k_train.jsonl --to data/gsm8k --format gsm8k
    r1 data import math_train.parquet --to data/math --format math

- gsm8k: `question`, `answer` = solution text ending in `#### N` -> prompt (one user message),
  answer N (thousands separators dropped: "#### 1,234" -> "1234"), domain math, language en;
  the original solution text is kept as `solution`.
- math (Hendrycks MATH, MATH-500): `problem`, `solution` -> prompt, answer = the row's own
  `answer` column when it has one (MATH-500 does), else the last \\boxed{} of the solution;
  `solution`, `level`, `type`, ... are carried through.
- jsonl: canonical columns already; only validated.

The question goes into the prompt verbatim: how to ask for the answer (a system prompt, the
r1zero template) is the recipe's choice, not the data's. A row whose answer cannot be
extracted is an error naming the row; with `skip_bad` it is dropped and counted instead.
A `domain`/`language` the row already has wins over the format's default.
"""

from __future__ import annotations

import re

import pyarrow as pa
from datasets import Dataset

from r1cli.data.io import dataset, table_of
from r1cli.errors import UserError
from r1cli.templates import last_boxed

FORMATS = ("jsonl", "gsm8k", "math")

# "1,234" and "-12,345.5", but not "1,2" (a list, not a number with a thousands separator)
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def gsm8k_answer(solution) -> str | None:
    """N from a GSM8K solution ending in `#### N` (None when there is no `####` or no N)."""
    if not isinstance(solution, str) or "####" not in solution:
        return None
    n = solution.rsplit("####", 1)[1].strip()
    if _THOUSANDS.match(n):
        n = n.replace(",", "")
    return n or None


def math_answer(row: dict) -> str | None:
    given = row.get("answer")
    if given is not None and str(given).strip():
        return str(given).strip()
    return last_boxed(row["solution"]) if isinstance(row.get("solution"), str) else None


def _gsm8k(row: dict) -> dict | None:
    answer = gsm8k_answer(row["answer"])
    if answer is None or not isinstance(row["question"], str) or not row["question"].strip():
        return None
    rest = {k: v for k, v in row.items() if k not in ("question", "answer")}
    return {"prompt": [{"role": "user", "content": row["question"]}], "answer": answer, "solution": row["answer"],
            **rest, "domain": row.get("domain") or "math", "language": row.get("language") or "en"}


def _math(row: dict) -> dict | None:
    answer = math_answer(row)
    if not answer or not isinstance(row["problem"], str) or not row["problem"].strip():
        return None
    rest = {k: v for k, v in row.items() if k not in ("problem", "answer")}
    return {"prompt": [{"role": "user", "content": row["problem"]}], "answer": answer, **rest,
            "domain": row.get("domain") or "math", "language": row.get("language") or "en"}


_MAPPERS = {"gsm8k": (_gsm8k, ("question", "answer"), "no '#### N' final answer in its answer"),
            "math": (_math, ("problem", "solution"), "no \\boxed{} final answer in its solution (and no answer column)")}


def convert(ds: Dataset, fmt: str, path="", skip_bad: bool = False) -> tuple[Dataset, int]:
    """(`ds` in canonical prompt columns, rows skipped). jsonl rows are returned as they are."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return ds, 0
    mapper, needs, why = _MAPPERS[fmt]
    missing = [c for c in needs if c not in ds.column_names]
    if missing:
        raise UserError(f"{path} has no column {missing[0]!r} ({fmt} rows have {', '.join(needs)}; "
                        f"it has {', '.join(ds.column_names)}): check --format")
    rows, skipped = [], 0
    for batch in table_of(ds).to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            new = mapper(row)
            if new is None:
                if not skip_bad:
                    raise UserError(f"{path} row {len(rows) + skipped}: {why}: fix the row, or pass --skip-bad to drop such rows")
                skipped += 1
                continue
            rows.append(new)
    if not rows:
        raise UserError(f"{path}: no row has a final answer ({skipped} skipped): check --format")
    try:
        return dataset(pa.Table.from_pylist(rows)), skipped
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise UserError(f"{path}: rows have different structures ({e}): give every row the same structure") from None
