"""`r1 reject-sample`: verified sampling into SFT data (DeepSeek-R1 stage 3, and cold-start collection).

    r1 reject-sample --model runs/demo/grpo --data runs/demo/data/rl --out runs/demo/rs \\
        --recipe recipes/toy/reject_sample.yaml [--n 8] [--keep all-correct|best|first] \\
        [--judge MODEL_DIR | --judge-url URL] [--num-shards N --shard-index I] [--resume]
    r1 reject-sample --mode general --model runs/demo/grpo --data runs/demo/data/general --out runs/demo/rs_general
    r1 reject-sample --few-shot runs/demo/data/coldstart --model runs/demo/base --data ... --out ...   # cold start

Samples n completions per prompt, keeps only verified and readable ones and writes them as
an SFT dataset (`messages` in the R1 format, `source_id`, `sample_index`, `domain`,
`language`, `verifier`, `num_tokens`, `reward_<name>`, and the input's other columns) that
`r1 sft` takes. The manifest counts prompts, samples, accepted rows per domain with mean
tokens, rejections per reason, the per-prompt pass-rate histogram and the throughput.

Streaming and faults: prompts are read a chunk (`chunk_size`) at a time from the Arrow-backed
dataset; each finished chunk is written atomically as OUT.partial/chunks/NNNNNN.arrow (its
counts beside it), so memory does not grow with the number of prompts and, after a kill -9,
`--resume` skips the finished chunks. A chunk's samples depend on (seed, chunk index) only.
Sharding hands out whole chunks (chunk c goes to shard c % N): a prompt's samples then come
from the same batch as in an unsharded run, so `r1 data merge` of the shards equals one run
(keep chunk_size, batch size and seed equal across shards). At the end the chunks are joined
into the dataset dir and removed. Per-chunk work lives in r1cli/stages/sampling.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from r1cli.artifacts import (
    check_input,
    check_model_dir,
    check_output,
    describe_inputs,
    partial_path,
    read_manifest,
    stage_output,
    write_json_atomic,
)
from r1cli.config import RULE_VERIFIERS, RejectSampleConfig
from r1cli.data import load_prompts, load_sft, save_dataset
from r1cli.data.io import table_of
from r1cli.errors import UserError
from r1cli.generation import check_backend, load_generator
from r1cli.tools import check_template, resolve_tools
from r1cli.tools.loop import ToolLoop
from r1cli.generation.lengths import filter_overhead, fit_prompts, model_context
from r1cli.generation.judge import check_environment as check_judge_environment
from r1cli.generation.judge import check_reachable, load_judge
from r1cli.recipe import to_dict
from r1cli.rejection import sampling
from r1cli.rejection.filters import compile_patterns
from r1cli.rewards import check_options, get_reward
from r1cli.templates import is_r1_format, prefilled_think

console = Console(stderr=True)
# settings that do not change which rows a chunk writes: they may differ on --resume
_RESUME_FREE = ("judge.concurrency", "judge.retries", "judge.backoff_s", "judge.timeout_s")


# --- checks ---------------------------------------------------------------------------------------


def check_environment(cfg: RejectSampleConfig) -> None:
    """What the settings need from this machine (the settings themselves were checked when resolved)."""
    check_backend(cfg.backend)
    check_judge_environment(cfg.judge)


def needed_verifiers(cfg: RejectSampleConfig, ds) -> set[str]:
    """The verifiers the rows will go to (from their domains; before any model loads)."""
    if cfg.mode == "general":
        return set() if sampling.filters_only(cfg) else {cfg.verifier_general}
    domains = set(ds.unique("domain")) if "domain" in ds.column_names else {None}
    return {sampling.route(cfg, d) for d in domains}


def check_columns(cfg: RejectSampleConfig, ds, path) -> None:

    needed = needed_verifiers(cfg, ds)
    cols = set(ds.column_names)
    for name in needed & set(RULE_VERIFIERS):
        missing = [c for c in getattr(get_reward(name), "required_columns", ()) if c not in cols]
        if missing:
            raise UserError(f"--data {path} has no `{missing[0]}` column, which the {name} verifier needs: add it")
    if (needed & {"judge", "rule"} or cfg.mode == "general") and "answer" not in cols:
        why = "reference replies" if cfg.mode == "general" else f"reference answers for the {cfg.verifier_general} verifier"
        raise UserError(f"--data {path} has no `answer` column ({why}): add it")
    if "judge" in needed and not (cfg.judge.model_dir or cfg.judge.url):
        which = "every row (--mode general)" if cfg.mode == "general" else "rows whose domain has no rule verifier"
        raise UserError(f"{which} need the generative judge: pass --judge MODEL_DIR or --judge-url URL, "
                        "or set verifier_general: rule")


def warn_shared_ids(ds) -> None:
    """Output ids are f"{source id}-{sample index}": prompts sharing an id would share row ids."""
    import pyarrow.compute as pc

    ids = table_of(ds.select_columns(["id"])).column("id")
    shared = len(ids) - pc.count_distinct(ids).as_py()
    if shared:
        console.print(f"[yellow]warning:[/] {shared} prompts share an `id` with an earlier one: their rows will share "
                      "ids too, and `r1 data merge` keeps only the first of each")


def load_few_shot(path, cfg: RejectSampleConfig) -> list[list[dict]]:
    """--few-shot FILE: SFT rows whose last turn is an R1-format assistant reply."""

    if cfg.few_shot < 1:
        raise UserError("--few-shot is given but few_shot is 0: set few_shot >= 1 in the recipe or drop --few-shot")
    ds = load_sft(check_input(path, "--few-shot"), what="--few-shot")
    examples = []
    for i, messages in enumerate(ds["messages"]):
        last = messages[-1] if messages else {}
        if last.get("role") != "assistant" or not is_r1_format(last.get("content") or ""):
            raise UserError(f"--few-shot {path} row {i} does not end in an R1-format assistant turn "
                            "(<think>\\n...\\n</think>\\n + summary): few-shot examples must show the format")
        examples.append(sampling.as_messages(messages))
    return examples


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("verifiers", "reward_options"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resume(out: Path, config: dict, inputs: list) -> None:
    """--resume must continue the same job: same config (but for retry settings) and inputs."""
    m = read_manifest(partial_path(out))
    if m is None:
        return
    old, new = _flat(m.get("config") or {}), _flat(config)
    diff = [k for k in sorted(set(old) | set(new)) if k not in _RESUME_FREE and old.get(k) != new.get(k)]
    if diff:
        raise UserError(f"{partial_path(out)} was started with {diff[0]}={old.get(diff[0])!r}, not {new.get(diff[0])!r}: "
                        "resume with the same recipe and flags, or pass --force to start over")
    before = {i["path"]: i["fingerprint"] for i in m.get("inputs") or []}
    for i in describe_inputs(inputs):
        if before.get(i["path"], i["fingerprint"]) != i["fingerprint"]:
            raise UserError(f"{i['path']} changed since {partial_path(out)} was started: pass --force to start over")


def fit_context(cfg: RejectSampleConfig, ds, tokenizer, prefilled: bool, patterns, examples, model, data):
    """(the prompts that leave sampling.max_new_tokens of the model's context, how many were left out),
    measured as the chunks build them (few-shot turns, the general template, a pre-filled <think>)."""
    from types import SimpleNamespace

    # each prompt gets few_shot examples drawn by its index, and dropping rows moves the indices: measure
    # every prompt with the longest ones, so a prompt kept here fits whichever it gets
    longest = sorted(examples, key=lambda ex: -sum(len(m["content"]) for m in ex))[:cfg.few_shot]
    ctx = sampling.Context(cfg=cfg, generator=SimpleNamespace(tokenizer=tokenizer), judge=None, prefilled=prefilled,
                           patterns=patterns, examples=longest)
    rows = ds.select_columns([c for c in ("prompt", "answer") if c in ds.column_names]).to_list()
    # a trivial general prompt keeps its reply and is never sent to the model
    sent = [i for i, r in enumerate(rows) if not (cfg.mode == "general" and sampling.is_trivial(
        sampling.prompt_text(r["prompt"]), cfg.trivial_max_chars, patterns))]
    prompts = [sampling.model_prompt(ctx, rows[i], i)[0] for i in sent]
    ids = ds["id"]
    # few-shot turns and the general template are the stage's, not the data's: `r1 data filter` leaves room for them
    extra = filter_overhead(tokenizer, lambda q: sampling.model_prompt(ctx, {"prompt": q, "answer": ""}, 0)[0])
    kept, dropped = fit_prompts(prompts, [ids[i] for i in sent], tokenizer, budget=cfg.sampling.max_new_tokens,
                                context=model_context(model), drop=cfg.drop_long_prompts,
                                budget_name="sampling.max_new_tokens", lower="--set sampling.max_new_tokens={n}",
                                model=model, data=data, filter_overhead=extra)
    if dropped:
        keep = set(range(len(rows))) - set(sent) | {sent[k] for k in kept}
        ds = ds.select(sorted(keep))
        console.print(f"left out {dropped} of {len(rows)} prompts that leave fewer than sampling.max_new_tokens="
                      f"{cfg.sampling.max_new_tokens} tokens of the model's context (drop_long_prompts)",
                      markup=False, highlight=False)
    return ds, dropped


# --- chunks ---------------------------------------------------------------------------------------


def my_chunks(n_rows: int, cfg: RejectSampleConfig) -> list[int]:
    total = -(-n_rows // cfg.chunk_size)
    return [c for c in range(total) if c % cfg.num_shards == cfg.shard_index]


def chunk_paths(d: Path, c: int) -> tuple[Path, Path]:
    return d / f"{c:06d}.arrow", d / f"{c:06d}.json"


def write_chunk(d: Path, c: int, table, stats: dict) -> None:
    """Counts first, then the rows via a temp name + rename: the .arrow file exists only when whole."""
    import pyarrow as pa

    arrow, meta = chunk_paths(d, c)
    write_json_atomic(meta, stats)
    tmp = d / f".{arrow.name}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        with pa.ipc.new_stream(fh, table.schema) as writer:
            writer.write_table(table)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, arrow)


def add_stats(total: dict, s: dict) -> None:
    for k, v in s.items():
        if isinstance(v, dict):
            sub = total.setdefault(k, {})
            for kk, vv in v.items():
                if isinstance(vv, list):
                    cur = sub.setdefault(kk, [0] * len(vv))
                    sub[kk] = [a + b for a, b in zip(cur, vv)]
                else:
                    sub[kk] = sub.get(kk, 0) + vv
        else:
            total[k] = total.get(k, 0) + v


# --- the stage ------------------------------------------------------------------------------------


def run(cfg: RejectSampleConfig, *, model: Path, data: Path, out: Path, few_shot: Path | None = None,
        force: bool = False, resume: bool = False) -> Path:
    from transformers import AutoTokenizer

    # --- check inputs: everything before the model loads
    check_environment(cfg)
    check_options(cfg.reward_options)
    model = check_model_dir(model)
    data = check_input(data, "--data")
    check_output(out, force, resume)
    ds = load_prompts(data)
    if cfg.limit:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    check_columns(cfg, ds, data)
    if cfg.judge.url and "judge" in needed_verifiers(cfg, ds):

        check_reachable(cfg.judge)
    warn_shared_ids(ds)
    examples = load_few_shot(few_shot, cfg) if few_shot is not None else []
    patterns = compile_patterns(cfg.trivial_patterns) if cfg.mode == "general" else []
    if cfg.judge.model_dir:
        check_model_dir(cfg.judge.model_dir, "--judge")
    tokenizer = AutoTokenizer.from_pretrained(model)
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer in {model} has no chat template: r1 reject-sample sends chat prompts")
    if cfg.tools:
        check_template(tokenizer)
    prefilled = prefilled_think(tokenizer, "r1", cfg.prefilled_think)  # the prompts are chat prompts
    ds, dropped = fit_context(cfg, ds, tokenizer, prefilled, patterns, examples, model, data)
    inputs = [model, data] + ([few_shot] if few_shot else []) + ([Path(cfg.judge.model_dir)] if cfg.judge.model_dir else [])
    config = to_dict(cfg)
    if resume and not force:
        check_resume(out, config, inputs)
    chunks = my_chunks(len(ds), cfg)

    with stage_output(out, kind="dataset", stage="reject-sample", config=config, inputs=inputs,
                      force=force, resume=resume) as run_:

        rule = {n: get_reward(n, prefilled_think=False, **cfg.reward_options) for n in RULE_VERIFIERS
                if n in needed_verifiers(cfg, ds)}
        generator = load_generator(model, backend=cfg.backend)
        if cfg.tools:
            generator = ToolLoop(generator, resolve_tools(cfg.tools, cfg), cfg)
        ctx = sampling.Context(cfg=cfg, generator=generator, judge=load_judge(cfg.judge, cfg.backend),
                              prefilled=prefilled, patterns=patterns, examples=examples, rewards=rule,
                              carried=[c for c in ds.column_names if c not in sampling.KNOWN
                                       and c not in {n for n, _ in sampling.FIXED} and not c.startswith("reward_")])
        chunk_dir = run_.path("chunks")
        chunk_dir.mkdir(exist_ok=True)
        for leftover in chunk_dir.glob(".*.tmp*"):  # a write cut off by a kill
            leftover.unlink()
        table = table_of(ds)
        sample_chunks(run_, ctx, table, chunks, chunk_dir)
        totals: dict = {}
        for c in chunks:
            add_stats(totals, json.loads(chunk_paths(chunk_dir, c)[1].read_text()))
        join_chunks(run_, chunks, chunk_dir, ctx.schema(table))
        report(run_, cfg, totals, len(chunks))
        run_.counts["dropped_long_prompts"] = dropped
    print_summary(run_.counts, run_.metrics, out)
    return out


def sample_chunks(run_, ctx, table, chunks: list[int], chunk_dir: Path) -> None:
    """Process the chunks not written yet, with a rich progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cfg = ctx.cfg
    size = lambda c: min(cfg.chunk_size, table.num_rows - c * cfg.chunk_size)  # noqa: E731
    todo = [c for c in chunks if not chunk_paths(chunk_dir, c)[0].exists()]
    bar = Progress(TextColumn("[bold]reject-sample"), BarColumn(), MofNCompleteColumn(), TextColumn("prompts"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    samples = accepted = 0
    seconds = 1e-9
    with bar:
        task = bar.add_task("prompts", total=sum(size(c) for c in chunks),
                            completed=sum(size(c) for c in chunks if c not in todo), info="")
        for c in todo:
            start = c * cfg.chunk_size
            rows, stats = sampling.process_chunk(ctx, table.slice(start, size(c)), start, sampling.chunk_seed(cfg.seed, c))
            write_chunk(chunk_dir, c, rows, {"chunk": c, **stats})
            samples, accepted, seconds = samples + stats["samples"], accepted + stats["accepted"], seconds + stats["seconds"]
            run_.log_metrics({"chunk": c, "prompts": stats["prompts"], "samples": stats["samples"],
                              "accepted": stats["accepted"], "seconds": stats["seconds"]})
            bar.update(task, advance=size(c), info=f"{samples / seconds:.1f} samples/s, "
                                                   f"accept {accepted / max(samples, 1):.0%}")


def join_chunks(run_, chunks: list[int], chunk_dir: Path, schema) -> None:
    """The chunks, memory-mapped and in order, saved as one dataset dir; then they go."""
    from datasets import Dataset, concatenate_datasets

    # a shard with no chunks (fewer chunks than shards) still writes an empty dataset of the same columns
    parts = [Dataset.from_file(str(chunk_paths(chunk_dir, c)[0])) for c in chunks] or [Dataset(schema.empty_table())]
    ds = concatenate_datasets(parts)
    save_dataset(ds, run_.partial)
    del ds, parts
    shutil.rmtree(chunk_dir)


def report(run_, cfg: RejectSampleConfig, t: dict, n_chunks: int) -> None:
    """Counts and metrics for the manifest."""
    samples, seconds = t.get("samples", 0), max(t.get("seconds", 0.0), 1e-9)
    hist = {f"{k}/{cfg.n}": v for k, v in sorted(t.get("pass_hist", {}).items(), key=lambda kv: int(kv[0]))}
    run_.counts.update(
        prompts=t.get("prompts", 0), trivial=t.get("trivial", 0), samples=samples, passed=t.get("passed", 0),
        accepted=t.get("accepted", 0), not_kept=t.get("not_kept", 0),
        rejected=dict(sorted(t.get("rejected", {}).items(), key=lambda kv: -kv[1])),
        accepted_by_domain={d: {"rows": n, "mean_tokens": round(tok / n, 1) if n else None}
                            for d, (n, tok) in sorted(t.get("by_domain", {}).items())},
        pass_rate_histogram=hist, chunks=n_chunks, shard=f"{cfg.shard_index}/{cfg.num_shards}")
    if cfg.tools:  # calls per sample and failed calls per call, as r1 eval and TRL name them
        calls = t.get("tool_calls", 0)
        run_.counts.update(tool_calls=calls, tool_failures=t.get("tool_failures", 0))
        run_.metrics.update(tool_call_rate=round(calls / samples, 4) if samples else None,
                            tool_failure_rate=round(t.get("tool_failures", 0) / calls, 4) if calls else 0.0)
    run_.metrics.update(
        accept_rate=round(t.get("accepted", 0) / samples, 4) if samples else None,
        pass_rate=round(t.get("passed", 0) / samples, 4) if samples else None,
        samples_per_s=round(samples / seconds, 2), prompts_per_s=round(t.get("prompts", 0) / seconds, 2),
        tokens_per_s=round(t.get("generated_tokens", 0) / seconds, 1), sampling_seconds=round(seconds, 2))


def print_summary(counts: dict, metrics: dict, out: Path) -> None:
    from rich.table import Table

    t = Table(title=escape(f"r1 reject-sample -> {out}"))
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_column("note")
    t.add_row("prompts", str(counts["prompts"]), f"{counts['trivial']} trivial (reply kept, no CoT)" if counts["trivial"] else "")
    t.add_row("samples drawn", str(counts["samples"]), f"{metrics['samples_per_s']} samples/s, {metrics['tokens_per_s']} tok/s")
    t.add_row("passed every check", str(counts["passed"]), f"pass rate {metrics['pass_rate']}")
    t.add_row("[bold]rows written", f"[bold]{counts['accepted']}", f"{counts['not_kept']} verified but not kept (--keep)")
    for d, v in counts["accepted_by_domain"].items():
        t.add_row(escape(f"  domain={d}"), str(v["rows"]), f"mean {v['mean_tokens']} tokens")
    for reason, n in counts["rejected"].items():
        t.add_row(escape(f"  rejected: {reason}"), str(n), "")
    t.add_row("pass-rate histogram", "", "  ".join(f"{k}: {v}" for k, v in counts["pass_rate_histogram"].items()))
    Console().print(t)
