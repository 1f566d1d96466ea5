"""One chunk of `r1 reject-sample` (r1cli/stages/reject_sample.py runs the chunks):

    prompts -> n samples each (one batched generate call) -> readability filters
            -> verifier per domain -> dedupe + --keep -> SFT rows (an Arrow table) + counts

A chunk's result depends only on its prompts, the config and its seed, which is derived
from (seed, chunk index): so a resumed run, a sharded run and an uninterrupted run write the
same rows for the same chunk.

Verification, per row: `verifiers[domain]` (accuracy: math-verify on the \\boxed{} answer;
code: the sandboxed tests, all must pass), and for other domains, or when a rule reward says
it does not apply (None), `verifier_general`: `judge` (the generative judge) or `rule` (the
summary equals the reference after normalization). In `--mode general` the row keeps the
reference as its reply, and the check (`general_check`) is either that the CoT's summary agrees
with it (summary: a CoT written towards a known reply may not lead to it; a disagreeing one is
rejected as `inconsistent`), or only the readability filters (filters: the paper's V3 path).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from r1cli.config import RULE_VERIFIERS, RejectSampleConfig
from r1cli.generation import render_prompt
from r1cli.rejection.filters import Parsed, is_trivial, parse, readability_reasons, same_reply
from r1cli.templates import THINK_CLOSE, THINK_OPEN, prompt_text
from r1cli.tools.loop import ToolLoop, model_text, trajectory_messages, trajectory_text

# input columns the stage reads; other input columns are carried through to the rows
KNOWN = ("id", "prompt", "answer", "domain", "language", "tests")
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
FIXED = [("id", pa.string()), ("messages", MESSAGES), ("source_id", pa.string()), ("sample_index", pa.int64()),
         ("domain", pa.string()), ("language", pa.string()), ("verifier", pa.string()), ("num_tokens", pa.int64()),
         # how many of the prompt's n samples passed every check (its measured pass rate, for r1 data filter)
         ("passed", pa.int64())]


def chunk_seed(seed: int, chunk: int) -> int:
    """The sampling seed of a chunk: a function of (seed, global chunk index) only."""
    # 31 bits: backends multiply it (seed * 1_000_003 + batch) and torch seeds must fit in 64 bits
    return int(hashlib.sha256(f"r1cli:{seed}:{chunk}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def as_messages(prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in prompt]


def filters_only(cfg: RejectSampleConfig) -> bool:
    """general mode with general_check: filters: the readability filters are the whole check."""
    return cfg.mode == "general" and cfg.general_check == "filters"


def reward_columns(cfg: RejectSampleConfig) -> list[str]:
    """The reward_<name> columns every chunk writes (the same set in every chunk and shard)."""
    names = set() if filters_only(cfg) else {cfg.verifier_general}
    if cfg.mode == "reasoning":
        names |= set(cfg.verifiers.values())
    if cfg.filters.mixed_language is not None:
        names.add("language")
    if cfg.filters.min_repetition is not None:
        names.add("repetition")
    return [f"reward_{n}" for n in sorted(names)]


@dataclass
class Context:
    """What every chunk needs, set up once by the stage."""

    cfg: RejectSampleConfig
    generator: object
    judge: object | None
    prefilled: bool  # the chat template ends the generation prompt with <think>
    patterns: list = field(default_factory=list)  # trivial-prompt rule (general mode)
    examples: list[list[dict]] = field(default_factory=list)  # --few-shot conversations
    rewards: dict = field(default_factory=dict)  # rule verifier name -> reward function
    carried: list[str] = field(default_factory=list)

    def schema(self, table: pa.Table) -> pa.Schema:
        fields = FIXED + [(c, pa.float64()) for c in reward_columns(self.cfg)]
        return pa.schema(fields + [table.schema.field(c) for c in self.carried])


@dataclass
class Sample:
    row: int
    index: int
    parsed: Parsed
    num_tokens: int
    finish_reason: str
    reason: str | None = None
    verifier: str | None = None
    rewards: dict = field(default_factory=dict)
    turns: list | None = None  # sampled with tools: the trajectory (r1cli/tools/loop.py)
    tool_calls: int = 0
    tool_failures: int = 0
    prefilled: bool = False  # the prompt ended in <think>: the first turn lacks it


# --- prompts ------------------------------------------------------------------------------------


def model_prompt(ctx: Context, row: dict, global_index: int):
    """(what the model is given, whether it starts inside <think>) for one input row."""
    cfg = ctx.cfg
    messages = as_messages(row["prompt"])
    if cfg.mode == "general":  # the user turn may show the reference reply to write a CoT towards
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        last = users[-1] if users else len(messages) - 1
        fill = {"prompt": messages[last]["content"], "reply": row.get("answer") or ""}
        # one pass (not str.format): questions and replies are full of braces (LaTeX, code, JSON)
        text = re.sub(r"\{(prompt|reply)\}", lambda m: fill[m.group(1)], cfg.general_template)
        messages = messages[:last] + [{**messages[last], "content": text}] + messages[last + 1:]
    if ctx.examples and cfg.few_shot:
        rng = random.Random(f"{cfg.seed}:few-shot:{global_index}")
        picks = rng.sample(range(len(ctx.examples)), min(cfg.few_shot, len(ctx.examples)))
        messages = [m for i in picks for m in ctx.examples[i]] + messages
    if cfg.mode == "general" and cfg.general_prefill_think and not ctx.prefilled:
        # with tools, rendered with their schemas as the tool loop renders a chat prompt
        text = ctx.generator.render(messages) if isinstance(ctx.generator, ToolLoop) else render_prompt(ctx.generator.tokenizer, messages)
        return text + THINK_OPEN + "\n", True
    return messages, ctx.prefilled


# --- verification --------------------------------------------------------------------------------


def route(cfg: RejectSampleConfig, domain: str | None) -> str:
    if cfg.mode == "general":
        return cfg.verifier_general
    # a row without a domain is not excluded from any reward: it tries the accuracy reward first
    name = cfg.verifiers.get(domain) if domain else cfg.verifiers.get("math", "accuracy")
    return name or cfg.verifier_general


def verify(ctx: Context, rows: list[dict], samples: list[Sample]) -> None:
    """Set reason (None = verified) and the verifier's reward on samples that passed the filters."""
    cfg = ctx.cfg
    fail = "inconsistent" if cfg.mode == "general" else "incorrect"
    todo = [s for s in samples if s.reason is None]
    if filters_only(cfg):
        for s in todo:  # the readability filters were the check; the row needs a reply for the CoT
            s.verifier, s.reason = "filters", None if (rows[s.row].get("answer") or "").strip() else "no_reference"
        return
    for s in todo:
        s.verifier = route(cfg, rows[s.row].get("domain"))
    for name in RULE_VERIFIERS:
        group = [s for s in todo if s.verifier == name]
        if not group:
            continue
        cols = {c: [rows[s.row].get(c) for s in group] for c in ("answer", "domain", "language", "tests")}
        values = ctx.rewards[name]([rows[s.row]["prompt"] for s in group], [s.parsed.text for s in group], **cols)
        for s, v in zip(group, values):
            if v is None:  # the rule does not apply to this row: the general verifier decides
                s.verifier = cfg.verifier_general
                continue
            s.rewards[name] = float(v)
            s.reason = None if v >= 1.0 else fail
    for s in todo:
        if s.verifier == "rule":
            ok = same_reply(s.parsed.summary, rows[s.row].get("answer") or "")
            s.rewards["rule"], s.reason = float(ok), None if ok else fail
    group = [s for s in todo if s.verifier == "judge"]
    if group and ctx.judge is None:
        for s in group:
            s.reason = "no_judge"
    elif group:
        items = [(prompt_text(rows[s.row]["prompt"]), rows[s.row].get("answer") or "", s.parsed.summary) for s in group]
        for s, v in zip(group, ctx.judge.judge(items)):
            s.rewards["judge"] = float(v.correct) if v.reason in (None, "incorrect") else None
            s.reason = None if v.correct else (fail if v.reason == "incorrect" else v.reason)


def select(cfg: RejectSampleConfig, passed: list[Sample], reply) -> tuple[list[Sample], int, int]:
    """(kept samples, duplicates, not kept) of one prompt's verified samples, in sample order."""
    seen, unique, dupes = set(), [], 0
    for s in passed:
        key = reply(s)
        if cfg.dedupe and key in seen:
            s.reason, dupes = "duplicate", dupes + 1
            continue
        seen.add(key)
        unique.append(s)
    if cfg.keep == "first":
        kept = unique[:1]
    elif cfg.keep == "best":  # the shortest correct sample; ties go to the lower sample index
        kept = sorted(unique, key=lambda s: (s.num_tokens, s.index))[:1]
    else:
        kept = unique
    return kept, dupes, len(unique) - len(kept)


# --- a chunk -------------------------------------------------------------------------------------


def process_chunk(ctx: Context, table: pa.Table, start: int, seed: int) -> tuple[pa.Table, dict]:
    """SFT rows and counts for the prompts in `table` (global indices start, start+1, ...)."""
    cfg, t0 = ctx.cfg, time.time()
    rows = table.select([c for c in KNOWN if c in table.column_names]).to_pylist()
    trivial = [cfg.mode == "general" and is_trivial(prompt_text(r["prompt"]), cfg.trivial_max_chars, ctx.patterns)
               for r in rows]
    todo = [i for i, t in enumerate(trivial) if not t]
    built = [model_prompt(ctx, rows[i], start + i) for i in todo]
    outs = ctx.generator.generate([p for p, _ in built], cfg.sampling, n=cfg.n, seed=seed) if todo else []
    # the checks read the model's own text: with tools, its turns without the tool results
    samples = [Sample(i, j, parse(model_text(c), pre), c.num_tokens, c.finish_reason, turns=c.turns,
                      tool_calls=c.tool_calls, tool_failures=c.tool_failures, prefilled=pre)
               for i, (_, pre), comps in zip(todo, built, outs) for j, c in enumerate(comps)]

    reasons, scores = readability_reasons([s.parsed for s in samples], [s.finish_reason for s in samples],
                                          [rows[s.row]["prompt"] for s in samples],
                                          [rows[s.row].get("language") for s in samples], cfg.filters)
    for k, s in enumerate(samples):
        s.reason = reasons[k]
        s.rewards.update({name: values[k] for name, values in scores.items() if values[k] is not None})
    verify(ctx, rows, samples)

    def reply(s: Sample) -> str:  # general mode keeps the reference as the reply after the CoT
        if s.tool_calls and cfg.mode != "general":  # the whole trajectory (a key for dedupe; rows get its messages)
            return trajectory_text(s.turns)
        summary = rows[s.row].get("answer") if cfg.mode == "general" else s.parsed.summary
        return f"{THINK_OPEN}\n{s.parsed.reasoning}\n{THINK_CLOSE}\n{summary}"

    by_row: dict[int, list[Sample]] = {}
    for s in samples:
        by_row.setdefault(s.row, []).append(s)
    out: list[tuple[int, int, str, Sample | None]] = []  # (row, sample index, reply, sample)
    hist, dupes, not_kept, n_passed = Counter(), 0, 0, {}
    for i, r in enumerate(rows):
        if trivial[i]:
            out.append((i, 0, r.get("answer") or "", None))
            continue
        passed = [s for s in by_row.get(i, []) if s.reason is None]
        n_passed[i] = len(passed)
        hist[str(len(passed))] += 1
        kept, d, k = select(cfg, passed, reply)
        dupes, not_kept = dupes + d, not_kept + k
        out.extend((i, s.index, reply(s), s) for s in kept)
    stats = {"prompts": len(rows), "trivial": sum(trivial), "samples": len(samples),
             "passed": sum(int(k) * v for k, v in hist.items()), "accepted": len(out), "not_kept": not_kept,
             "rejected": dict(Counter(s.reason for s in samples if s.reason is not None)),
             "pass_hist": dict(hist), "generated_tokens": sum(s.num_tokens for s in samples),
             **({"tool_calls": sum(s.tool_calls for s in samples), "tool_failures": sum(s.tool_failures for s in samples)}
                if ctx.cfg.tools else {})}
    result = _table(ctx, table, rows, out, stats, n_passed)
    return result, {**stats, "seconds": round(time.time() - t0, 3)}


def _table(ctx: Context, table: pa.Table, rows: list[dict], out: list, stats: dict, n_passed: dict) -> pa.Table:
    """The SFT rows of a chunk (fixed columns, reward columns, carried input columns); also
    adds the accepted rows and tokens per domain to `stats`."""
    tokenizer = ctx.generator.tokenizer
    cols: dict[str, list] = {name: [] for name, _ in FIXED}
    rewards = reward_columns(ctx.cfg)
    cols.update({c: [] for c in rewards})
    by_domain: dict[str, list[int]] = {}
    for i, j, text, s in out:
        r = rows[i]
        src = str(r.get("id"))
        tokens = s.num_tokens if s else len(tokenizer(text, add_special_tokens=False)["input_ids"])
        reply = trajectory_messages(s.turns, s.prefilled, names=False) if s and s.tool_calls and ctx.cfg.mode != "general" else [{"role": "assistant", "content": text}]
        values = {"id": f"{src}-{j}", "messages": as_messages(r["prompt"]) + reply,
                  "source_id": src, "sample_index": j, "domain": r.get("domain"), "language": r.get("language"),
                  "verifier": s.verifier if s else "reference", "num_tokens": tokens, "passed": n_passed.get(i)}
        for name, _ in FIXED:
            cols[name].append(values[name])
        for c in rewards:
            cols[c].append(s.rewards.get(c[len("reward_"):]) if s else None)
        d = by_domain.setdefault(str(r.get("domain") or "unknown"), [0, 0])
        d[0], d[1] = d[0] + 1, d[1] + tokens
    stats["by_domain"] = by_domain
    schema = ctx.schema(table)
    arrays = [pa.array(cols[f.name], f.type) for f in schema if f.name in cols]
    if ctx.carried:
        picked = table.select(ctx.carried).take(pa.array([i for i, *_ in out], pa.int64()))
        arrays += [picked.column(c) for c in ctx.carried]
    return pa.Table.from_arrays(arrays, schema=schema)
