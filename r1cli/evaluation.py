"""The one evaluation path: sample k completions per prompt, score them with the reward
registry, and report the paper's numbers. `r1 eval` is a thin stage around it, and every
training stage that prints before/after numbers calls it too:

    r1 eval --model runs/demo/coldstart --data runs/demo/data/eval --out runs/demo/eval_coldstart

    rows, metrics = evaluate(load_generator(CKPT), load_prompts(EVAL_DS), k=4, sampling=SamplingConfig())

What each number means (DeepSeek-R1 §3's protocol):
- pass@1: per prompt, the share of its k samples whose answer the `accuracy` reward verifies,
  averaged over prompts (sampling at T=0.6, top-p 0.95, never greedy).
- pass@j for every j = 2..k: Chen et al. (2021)'s unbiased estimator, per prompt
  1 - C(k-c, j) / C(k, j) with c the samples the `accuracy` reward scores 1, averaged over prompts
  (r1cli/stats.py); pass@1 is the mean accuracy reward, the same number when rewards are 0/1.
- maj@j for every j = 1..k: majority vote over the extracted answers of the prompt's first j
  samples (sample_index 0..j-1; samples are drawn independently, so the first j are a random
  j-subset; ties: the first seen; answers written differently only in form vote together); the
  prompt counts when the voted answer is right, i.e. when the `accuracy` reward verified a sample
  giving it. maj@1 is the first sample's accuracy.
- cons@k: maj@k at j = k, all samples (the paper's cons@64 is maj@64); kept under this name.
- format_rate: share of samples the template-aware `format` reward accepts.
- language_consistency_rate: share of samples whose CoT is at least `language_threshold`
  target-language words (the `language` reward); a sample with no CoT is inconsistent.
- mean_completion_tokens, truncated_rate (share that hit max_new_tokens).
- sampled with tools (r1cli/tools/loop.py): `completion` is the whole trajectory, tool results
  included; the rewards and the extracted answer read the model's own text (`model_text`), and
  tool_call_rate (calls per sample) and tool_failure_rate (failed calls per call) are added.
Rows whose accuracy reward is None (general prompts) are left out of pass@j, maj@j and cons@k only.
Each number is also given per domain and per language (`by_domain`, `by_language`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from r1cli.config import EvalSettings, SamplingConfig
from r1cli.data import load_prompts
from r1cli.errors import UserError
from r1cli.generation import load_generator
from r1cli.rewards import get_reward
from r1cli.rewards.math import normalize
from r1cli.stats import pass_at_k
from r1cli.templates import (
    R1ZERO_TEMPLATE,
    TEMPLATES,
    apply_template,
    extract_answer,
    split_completion,
)
from r1cli.templates import prefilled_think as detect_prefilled
from r1cli.tools.loop import model_text

SCORED = ("accuracy", "format", "language")
HEADLINE = ("pass@1", "cons@k", "format_rate", "language_consistency_rate", "mean_completion_tokens")
# columns this module adds to each row; an input column of the same name is replaced
ADDED = ("sample_index", "completion", "extracted_answer", "num_tokens", "finish_reason", "language_consistent",
         "tool_calls", "tool_failures", *(f"reward_{n}" for n in SCORED))


# --- sampling and scoring --------------------------------------------------------------------


def evaluate(generator, ds, *, k: int = 4, sampling: SamplingConfig | None = None, template: str = "r1", seed: int = 0,
             language_threshold: float = 0.95, prefilled_think: bool | None = None, progress=True,
             r1zero_template: str | None = None, system_prompt: str | None = None) -> tuple[list[dict], dict]:
    """Sample k completions for each row of `ds` (canonical prompt columns) and score them.

    Returns (rows, metrics): one row per sample (the input row's columns plus those in ADDED)
    and the metrics described in the module docstring.
    """
    sampling = sampling or SamplingConfig()
    if template not in TEMPLATES:
        raise UserError(f"unknown template {template!r}: use one of {', '.join(TEMPLATES)}")
    if k < 1:
        raise UserError(f"k must be >= 1 (samples per prompt), got {k}")
    if not 0 < language_threshold <= 1:
        raise UserError(f"language_threshold must be in (0, 1], got {language_threshold}")
    if len(ds) == 0:
        raise UserError("the eval set is empty: give a dataset with at least one prompt")
    prefilled_think = detect_prefilled(generator.tokenizer, template, prefilled_think)
    scorers = reward_functions(template, prefilled_think)

    inputs = ds.to_list()
    prompts = model_prompts(inputs, template, r1zero_template, system_prompt)
    outs = generator.generate(prompts, sampling, n=k, seed=seed, progress=progress)
    rows = score(inputs, outs, scorers, prefilled_think, language_threshold)
    return rows, summarize(rows, k)


def model_prompts(rows, template: str, r1zero_template: str | None = None, system_prompt: str | None = None) -> list:
    """What the model is given for each row: chat messages (r1, with the system prompt) or the r1zero string."""
    return [apply_template(r["prompt"], template, r1zero_template or R1ZERO_TEMPLATE, system_prompt) for r in rows]


def reward_functions(template: str, prefilled_think: bool) -> dict:
    """The registry's accuracy, format and language rewards, set up for this template."""

    return {name: get_reward(name, template=template, prefilled_think=prefilled_think) for name in SCORED}


def score(inputs: list[dict], outs: list[list], scorers: dict, prefilled_think: bool, threshold: float) -> list[dict]:
    """One row per (prompt, sample) with every reward, in prompt order then sample order."""
    rows, ids = [], []
    tools = any(c.turns for comps in outs for c in comps)
    texts = []
    for src, comps in zip(inputs, outs):
        base = {c: v for c, v in src.items() if c not in ADDED}
        for j, c in enumerate(comps):
            texts.append(model_text(c))
            rows.append({**base, "sample_index": j, "completion": c.text,
                         "extracted_answer": extract_answer(texts[-1], prefilled_think),
                         "num_tokens": c.num_tokens, "finish_reason": c.finish_reason,
                         **({"tool_calls": c.tool_calls, "tool_failures": c.tool_failures} if tools else {})})
            ids.append(c.token_ids)
    # one call per reward over all samples (TRL's signature: columns as parallel lists)
    columns = {c: [r[c] for r in rows] for c in (rows[0] if rows else {}) if c not in ("prompt", "completion", *ADDED)}
    prompts = [r["prompt"] for r in rows]
    completions = texts
    for name, fn in scorers.items():
        values = fn(prompts, completions, completion_ids=ids, **columns)
        for r, v in zip(rows, values):
            r[f"reward_{name}"] = None if v is None else float(v)
    for r, text in zip(rows, texts):
        has_cot = split_completion(text, prefilled_think)[0] is not None
        lang = r.get("reward_language")
        # no CoT = inconsistent (the paper's reward is over the CoT); None = the reward does not apply
        r["language_consistent"] = False if not has_cot else (None if lang is None else lang >= threshold)
    return rows


# --- metrics ---------------------------------------------------------------------------------


def _mean(xs) -> float | None:
    xs = [float(x) for x in xs if x is not None]
    return round(sum(xs) / len(xs), 6) if xs else None


def vote_key(answer: str | None) -> str | None:
    """Answers that differ only in writing (spaces, $, \\dfrac, 7,425,000) vote together."""

    return normalize(answer) or None if answer is not None else None


def majority(answers: list[str | None]) -> str | None:
    """The most frequent vote key (ties: the one seen first); None when no sample gave one."""
    given = [k for k in map(vote_key, answers) if k is not None]
    if not given:
        return None
    counts = Counter(given)
    best = max(counts.values())
    return next(a for a in given if counts[a] == best)


def group_by_prompt(rows: list[dict]) -> list[list[dict]]:
    """Rows come prompt by prompt, sample_index 0..k-1 each (as score() writes them)."""
    groups: list[list[dict]] = []
    for r in rows:
        if r["sample_index"] == 0 or not groups:
            groups.append([])
        groups[-1].append(r)
    return groups


def prompt_scores(samples: list[dict]) -> dict[str, float] | None:
    """{"pass@j": ..., "maj@j": ..., "cons@k": ...} of one prompt for j = 1..its scored samples, in
    sample_index order; None when accuracy does not apply to it."""
    scored = sorted((s for s in samples if s.get("reward_accuracy") is not None), key=lambda s: s["sample_index"])
    if not scored:
        return None
    n = len(scored)
    correct = sum(s["reward_accuracy"] >= 1 for s in scored)
    out = {"pass@1": sum(s["reward_accuracy"] for s in scored) / n}
    out.update({f"pass@{j}": pass_at_k(n, correct, j) for j in range(2, n + 1)})
    for j in range(1, n + 1):
        out[f"maj@{j}"] = voted_accuracy(scored[:j])
    return {**out, "cons@k": out[f"maj@{n}"]}


def voted_accuracy(scored: list[dict]) -> float:
    """The accuracy of the majority-voted answer of these samples (0 when none gave an answer)."""
    voted = majority([s["extracted_answer"] for s in scored])
    if voted is None:
        return 0.0
    # the voted answer is checked by the accuracy reward already run on a sample that gave it
    first = next(s for s in scored if vote_key(s["extracted_answer"]) == voted)
    return float(first["reward_accuracy"])


def metrics_of(groups: list[list[dict]]) -> dict:
    samples = [s for g in groups for s in g]
    per_prompt = [p for p in map(prompt_scores, groups) if p is not None]
    # every j up to the fewest samples a prompt has (all prompts have k of them); None where accuracy does not apply
    ks = range(1, min(map(len, groups), default=0) + 1)
    return {
        "pass@1": _mean(p["pass@1"] for p in per_prompt),
        "cons@k": _mean(p["cons@k"] for p in per_prompt),
        **{f"pass@{j}": _mean(p.get(f"pass@{j}") for p in per_prompt) for j in ks if j > 1},
        **{f"maj@{j}": _mean(p.get(f"maj@{j}") for p in per_prompt) for j in ks},
        "format_rate": _mean(s.get("reward_format") for s in samples),
        "language_consistency_rate": _mean(s.get("language_consistent") for s in samples),
        "mean_completion_tokens": _mean(s["num_tokens"] for s in samples),
        "truncated_rate": _mean(s["finish_reason"] == "length" for s in samples),
        "n_prompts": len(groups),
        "n_scored_prompts": len(per_prompt),
        "n_samples": len(samples),
        **({"tool_call_rate": _mean(s["tool_calls"] for s in samples),
            "tool_failure_rate": sum(s["tool_failures"] for s in samples) / max(1, sum(s["tool_calls"] for s in samples))}
           if samples and "tool_calls" in samples[0] else {}),
    }


def summarize(rows: list[dict], k: int) -> dict:
    """Metrics over all rows, plus the same per domain and per language."""
    groups = group_by_prompt(rows)
    out = {**metrics_of(groups), "k": k}
    for key, col in (("by_domain", "domain"), ("by_language", "language")):
        values = sorted({str(g[0].get(col) or "unknown") for g in groups})
        out[key] = {v: metrics_of([g for g in groups if str(g[0].get(col) or "unknown") == v]) for v in values}
    return out


# --- printing --------------------------------------------------------------------------------


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.1f}"


def metrics_table(metrics: dict, title: str = "eval"):
    """A rich table: the whole set, then each domain and language (fits 80 columns)."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"{title} (k={metrics.get('k')}; rates in %)"))
    for col in ("subset", "prompts", "pass@1", "cons@k", "format", "lang", "tokens", "trunc"):
        t.add_column(col, justify="left" if col == "subset" else "right", no_wrap=True)

    def add(name: str, m: dict, style: str | None = None, end_section: bool = False):
        t.add_row(escape(name), str(m["n_prompts"]), _fmt(m["pass@1"]), _fmt(m["cons@k"]), _fmt(m["format_rate"]),
                  _fmt(m["language_consistency_rate"]), _fmt(m["mean_completion_tokens"], pct=False),
                  _fmt(m["truncated_rate"]), style=style, end_section=end_section)

    add("all", metrics, "bold", end_section=True)
    for key, label in (("by_domain", ""), ("by_language", "lang ")):
        groups = list(metrics.get(key, {}).items())
        for i, (v, m) in enumerate(groups):
            add(f"{label}{v}", m, end_section=i == len(groups) - 1)
    return t


def shown_ks(k: int) -> list[int]:
    """1, 2, 4, 8, ... and k itself: the j of pass@j and maj@j a printed table shows (r1.json has every j)."""
    return sorted({*(2 ** i for i in range(k.bit_length()) if 2 ** i <= k), k}) if k >= 1 else []


def at_k_table(metrics: dict, title: str = "eval"):
    """pass@j (unbiased) and maj@j (vote of the first j samples) over the whole set, a column per shown j."""
    from rich.markup import escape
    from rich.table import Table

    ks = [j for j in shown_ks(metrics.get("k") or 0) if f"maj@{j}" in metrics]
    t = Table(title=escape(f"{title}: pass@j and maj@j (%)"), caption="every j <= k is in r1.json")
    t.add_column("j", no_wrap=True)
    for j in ks:
        t.add_column(str(j), justify="right", no_wrap=True)
    for name in ("pass", "maj"):
        t.add_row(f"{name}@j", *(_fmt(metrics.get(f"{name}@{j}")) for j in ks))
    return t


def print_comparison(before: dict, after: dict, names: tuple[str, str] = ("before", "after")) -> None:
    """The headline numbers of two evaluations side by side, with the change."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="eval: before vs after (percentages; tokens as counts)")
    for col in ("metric", *names, "change"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for key in HEADLINE + ("truncated_rate",):
        pct = key != "mean_completion_tokens"
        b, a = before.get(key), after.get(key)
        delta = None if a is None or b is None else a - b
        sign = "" if delta is None or delta < 0 else "+"
        t.add_row(key, _fmt(b, pct), _fmt(a, pct), "-" if delta is None else sign + _fmt(delta, pct))
    Console().print(t)


# --- before / after a training stage ------------------------------------------------------------


def before_after(base: Path, trained: Path, eval_data: Path, settings: EvalSettings, template: str = "r1",
                 r1zero_template: str | None = None) -> dict:
    """Evaluate the input model and the trained one on the same prompts (the one evaluation path),
    with the stage's template; print both side by side; return {"before": ..., "after": ...}."""
    ds = load_prompts(eval_data)
    if settings.limit:
        ds = ds.select(range(min(settings.limit, len(ds))))
    res = {}
    for name, path in (("before", base), ("after", trained)):
        _, metrics = evaluate(load_generator(path, settings.backend, running=True), ds, k=settings.k, sampling=settings.sampling,
                              template=template, seed=settings.seed, language_threshold=settings.language_threshold,
                              r1zero_template=r1zero_template)
        res[name] = metrics
    print_comparison(res["before"], res["after"])
    return res
