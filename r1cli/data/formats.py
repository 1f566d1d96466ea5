"""Public dataset formats mapped onto the canonical columns (`r1 data import --format`, `--map`).

    r1 data import gsm8k_train.jsonl --to data/gsm8k --format gsm8k
    r1 data import math_train.parquet --to data/math --format math
    r1 data import chats.jsonl --to data/chat_prompts --format messages            # prompts
    r1 data import chats.jsonl --to data/chat_sft --format messages --kind sft     # SFT rows
    r1 data import qa.csv.jsonl --to data/qa --map prompt=Question --map answer=Answer

- gsm8k: `question`, `answer` = solution text ending in `#### N` -> prompt (one user message),
  answer N (thousands separators dropped: "#### 1,234" -> "1234"), domain math, language en;
  the original solution text is kept as `solution`.
- math (Hendrycks MATH, MATH-500): `problem`, `solution` -> prompt, answer = the row's own
  `answer` column when it has one (MATH-500 does), else the last \\boxed{} of the solution;
  `solution`, `level`, `type`, ... are carried through.
- messages: a conversation per row (`messages` as {role, content}, or ShareGPT's `conversations` as
  {from, value}). As prompts: the conversation up to its last user turn is the prompt (earlier turns
  kept as the chat), the assistant reply after it, if any, the answer (a reference reply). As SFT
  rows (--kind sft): the whole conversation, which must end with the assistant's reply.
- jsonl: canonical columns already; only validated.

`--map CANONICAL=SOURCE` renames SOURCE to CANONICAL first, for data whose columns are named
otherwise (`--map prompt=Question`); it combines with every format.

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

FORMATS = ("jsonl", "gsm8k", "math", "messages")
# ShareGPT's speaker names -> chat roles
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "tool": "tool"}
# column names (lower-cased) that hold the question / the reference in public datasets, for the hints
_QUESTION_COLUMNS = ("prompt", "question", "problem", "query", "instruction", "input", "text")
_ANSWER_COLUMNS = ("answer", "solution", "output", "response", "target", "reference", "final_answer")

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


def _conversation(row: dict) -> list[dict] | None:
    """The row's conversation as {role, content} messages (ShareGPT's from/value translated)."""
    turns = row.get("messages") if row.get("messages") is not None else row.get("conversations")
    if not isinstance(turns, list) or not turns or not all(isinstance(m, dict) for m in turns):
        return None
    out = []
    for m in turns:
        role = m.get("role") if "role" in m else _SHAREGPT_ROLES.get(str(m.get("from")).lower())
        content = m.get("content") if "content" in m else m.get("value")
        if not isinstance(role, str) or not isinstance(content, str):
            return None
        out.append({"role": role, "content": content})
    return out


def _rest(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("messages", "conversations", "prompt", "answer")}


def _messages_prompt(row: dict) -> dict | None:
    turns = _conversation(row)
    users = [i for i, m in enumerate(turns or []) if m["role"] == "user"]
    if not users or not turns[users[-1]]["content"].strip():
        return None
    last = users[-1]
    reply = turns[last + 1]["content"] if last + 1 < len(turns) and turns[last + 1]["role"] == "assistant" else ""
    return {"prompt": turns[:last + 1], "answer": row.get("answer") or reply, **_rest(row)}


def _messages_sft(row: dict) -> dict | None:
    turns = _conversation(row)
    if not turns or turns[-1]["role"] != "assistant":
        return None
    return {"messages": turns, **_rest(row)}


# format -> (row mapper, columns it needs (any one of a tuple), why a row fails)
_MAPPERS = {"gsm8k": (_gsm8k, ("question", "answer"), "no '#### N' final answer in its answer"),
            "math": (_math, ("problem", "solution"), "no \\boxed{} final answer in its solution (and no answer column)"),
            "messages": (_messages_prompt, (("messages", "conversations"),), "no user turn with text in its conversation"),
            "messages-sft": (_messages_sft, (("messages", "conversations"),),
                             "its conversation does not end with an assistant reply")}


def suggest(columns, kind: str = "prompts") -> str:
    """The import flags that fit these columns ("--format math", "--map prompt=Question ..."), for hints."""
    cols = list(columns)
    if kind == "sft":
        return "--format messages --kind sft" if {"messages", "conversations"} & set(cols) else "--map messages=COLUMN"
    if {"question", "answer"} <= set(cols):
        return "--format gsm8k"
    if {"problem", "solution"} <= set(cols):
        return "--format math"
    if {"messages", "conversations"} & set(cols):
        return "--format messages"
    lower = {c.lower(): c for c in cols}
    # a column already named as the canonical one needs no --map
    question = next((lower[n] for n in _QUESTION_COLUMNS if n in lower and lower[n] != "prompt"), None)
    answer = next((lower[n] for n in _ANSWER_COLUMNS if n in lower and lower[n] not in (question, "answer")), None)
    return f"--map prompt={question or 'COLUMN'}" + (f" --map answer={answer}" if answer else "")


def rename(ds: Dataset, maps: list[str] | None, path="") -> Dataset:
    """`--map CANONICAL=SOURCE` applied: each SOURCE column renamed to CANONICAL."""
    if not maps:
        return ds
    renames = {}
    for item in maps:
        target, sep, source = (x.strip() for x in item.partition("="))
        if not sep or not target or not source:
            raise UserError(f"--map {item!r} must look like CANONICAL=SOURCE, e.g. --map prompt=Question")
        if source not in ds.column_names:
            raise UserError(f"--map {item}: {path} has no column {source!r} (it has {', '.join(ds.column_names)})")
        if target in ds.column_names and target != source and target not in renames.values():
            raise UserError(f"--map {item}: {path} has a column {target!r} already: map another name onto it, or "
                            f"map {target} away first (--map old_{target}={target})")
        renames[source] = target
    targets = list(renames.values())
    if len(set(targets)) < len(targets):
        raise UserError(f"--map names {max(targets, key=targets.count)!r} twice: map one column onto each name")
    return ds.rename_columns(renames)


def convert(ds: Dataset, fmt: str, path="", skip_bad: bool = False, kind: str | None = None) -> tuple[Dataset, int]:
    """(`ds` in canonical columns, rows skipped): prompts, or SFT rows for `--format messages --kind sft`.
    jsonl rows are returned as they are."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return ds, 0
    mapper, needs, why = _MAPPERS["messages-sft" if fmt == "messages" and kind == "sft" else fmt]
    missing = [c for c in needs if not set([c] if isinstance(c, str) else c) & set(ds.column_names)]
    if missing:
        want = " or ".join(missing[0]) if isinstance(missing[0], tuple) else repr(missing[0])
        # the flags that fit the columns it has: never the --format that just failed
        raise UserError(f"{path} has no column {want} for --format {fmt} (it has {', '.join(ds.column_names)}): "
                        f"import it with {suggest(ds.column_names, kind or 'prompts')}")
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
        raise UserError(f"{path}: every row has {why} ({skipped} skipped): check --format")
    try:
        return dataset(pa.Table.from_pylist(rows)), skipped
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise UserError(f"{path}: rows have different structures ({e}): give every row the same structure") from None
