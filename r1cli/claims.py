"""Claims about a run, read from a YAML file, and their check on the run's numbers.

    r1 report runs/demo --out runs/demo/report --claims recipes/toy/claims.yaml --fail-on-claims
    make demo-check                                          # the same on $(RUN) with the toy's claims

A claims file is a list of claims; each has a `name`, the `text` a reader sees, and one or more
comparisons on the report's stage-table rows (their roles: base, base_r1zero, r1zero, coldstart, grpo,
grpo_nolang, sft, align, r1cli/stages/report.py `role`):

    - name: stage2
      text: stage 2 >= cold start + 10 points (pass@1)
      compare:
        - {metric: pass@1, stages: [grpo, coldstart], op: ">=", margin: 0.10}

`stages: [a, b]` compares `a - b` with the margin, `stages: [a]` a's own value; `op` is ">" (a - b > margin)
or ">=" (a - b >= margin); rates and margins are fractions (0.10 = 10 points). A comparison's status:

- holds: the point estimate meets the margin and so does the whole 95% confidence interval (a
  paired bootstrap over the prompts both rows were measured on, r1cli/stats.py; for one row, its
  own bootstrap CI): the difference is not the noise of which prompts were drawn;
- unclear: the point estimate meets the margin but the interval reaches past it (or there are
  no per-prompt numbers to bootstrap);
- fails: the point estimate does not meet the margin;
- not measured: a row or its number is missing (a stage or its eval was not run).

A claim holds when all its comparisons hold; otherwise it takes the status of its worst comparison (fails,
then not measured, then unclear). `--fail-on-claims` fails on anything but "holds": a claim nobody
measured, or one the data cannot tell from noise, is not a claim the run supports.

The per-prompt numbers come from the eval dirs' rows (`eval_numbers`) and from align's general_eval
before/after (`general_numbers`); r1cli/stages/report.py matches them to the stage table's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from r1cli.errors import UserError
from r1cli.stats import bootstrap_ci, paired_bootstrap_ci, ratio

POINTS = {"pass@1", "language_consistency_rate", "right_reply", "safe_rate"}  # rates, shown in % points
METRICS = (*sorted(POINTS), "helpfulness")  # the metrics with per-prompt numbers to bootstrap
OPS = (">", ">=")


@dataclass(frozen=True)
class Comparison:
    metric: str
    a: str              # row role
    b: str | None       # row role to subtract, or None: a's own value
    op: str             # ">" or ">="
    margin: float = 0.0


@dataclass(frozen=True)
class Claim:
    name: str           # a short id, e.g. for a test or a grep
    text: str           # as a reader sees it
    comparisons: tuple[Comparison, ...]


WORST = ("fails", "not measured", "unclear")  # a claim's status: the first of these a comparison has


def _meets(x: float, op: str, margin: float) -> bool:
    # a tolerance for the rounding of the manifests' numbers (6 decimals)
    return x > margin + 1e-9 if op == ">" else x >= margin - 1e-9


def fmt(metric: str, v: float | None, sign: bool = False) -> str:
    if v is None:
        return "–"
    if metric in POINTS:
        return f"{100 * v:+.1f}" if sign else f"{100 * v:.1f}"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def check_comparison(t: Comparison, rows: dict[str, dict], per_prompt: dict[str, dict]) -> dict:
    """One comparison on the rows ({role: report row}) and their per-prompt numbers ({role: {metric: {prompt: (num, den)}}})."""
    unit = ("%" if t.b is None else " points") if t.metric in POINTS else ""
    out = {"metric": t.metric, "a": t.a, "b": t.b, "op": t.op, "margin": t.margin, "value": None, "ci": None,
           "n_prompts": None}
    missing = [r for r in (t.a, t.b) if r is not None and (r not in rows or rows[r].get(t.metric) is None)]
    if missing:
        return {**out, "status": "not measured",
                "why": f"no {t.metric} for {' or '.join(missing)} (stage or its eval not run)"}
    pa, pb = (per_prompt.get(r, {}).get(t.metric) if r else None for r in (t.a, t.b))
    if t.b is None:
        value = rows[t.a][t.metric]
        ci = bootstrap_ci(list(pa.values())) if pa else None
        n = len(pa) if pa else None
        what = f"{t.metric} of {t.a} {fmt(t.metric, value)}{unit}"
    else:
        common = [k for k in pa if k in pb] if pa and pb else []
        if common:  # the difference on the prompts both rows were measured on
            a, b = [pa[k] for k in common], [pb[k] for k in common]
            value, ci, n = ratio(a) - ratio(b), paired_bootstrap_ci(a, b), len(common)
        else:
            value, ci, n = rows[t.a][t.metric] - rows[t.b][t.metric], None, None
        what = (f"{t.metric} {t.a} {fmt(t.metric, rows[t.a][t.metric])} - {t.b} {fmt(t.metric, rows[t.b][t.metric])}"
                f" = {fmt(t.metric, value, sign=True)}{unit}")
    need = f"needs {t.op} {fmt(t.metric, t.margin, sign=t.b is not None)}{unit}"
    shown = f"95% CI {fmt(t.metric, ci[0], t.b is not None)} to {fmt(t.metric, ci[1], t.b is not None)}" if ci else \
        "no per-prompt numbers for a CI"
    if not _meets(value, t.op, t.margin):
        status = "fails"
    elif ci is None or not _meets(ci[0], t.op, t.margin):
        status = "unclear"
    else:
        status = "holds"
    on = f", {n} prompts" if n else ""
    return {**out, "value": value, "ci": list(ci) if ci else None, "n_prompts": n, "status": status,
            "why": f"{what} ({shown}{on}); {need}"}


def load_claims(path: Path, roles: tuple[str, ...]) -> tuple[Claim, ...]:
    """The claims of a YAML file; every mistake is one line naming the file, the claim and what to fix."""
    import yaml

    if not Path(path).is_file():
        raise UserError(f"--claims {path} does not exist: give a YAML file of claims (e.g. recipes/toy/claims.yaml)")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:
        raise UserError(f"--claims {path} is not valid YAML: fix the syntax") from None
    if not isinstance(data, list) or not data:
        raise UserError(f"--claims {path} must be a non-empty list of claims (name, text, compare)")
    out = []
    for i, c in enumerate(data):
        where = f"--claims {path}, claim {i + 1}"
        if not isinstance(c, dict) or set(c) - {"name", "text", "compare"} or not {"name", "compare"} <= set(c):
            raise UserError(f"{where}: a claim is a mapping of name, text (optional) and compare")
        compare = c["compare"] if isinstance(c["compare"], list) else [c["compare"]]
        comps = []
        for t in compare:
            if not isinstance(t, dict) or set(t) - {"metric", "stages", "op", "margin"}:
                raise UserError(f"{where}: a comparison is a mapping of metric, stages, op and margin")
            stages, op, margin = t.get("stages"), t.get("op", ">"), t.get("margin", 0.0)
            if t.get("metric") not in METRICS:
                raise UserError(f"{where}: metric {t.get('metric')!r} is not one of {', '.join(METRICS)}")
            if not isinstance(stages, list) or len(stages) not in (1, 2) or any(s not in roles for s in stages):
                raise UserError(f"{where}: stages must list one or two of {', '.join(roles)}, got {stages!r}")
            if op not in OPS or isinstance(margin, bool) or not isinstance(margin, (int, float)):
                raise UserError(f"{where}: op must be one of {', '.join(OPS)} and margin a number, got {op!r}, {margin!r}")
            comps.append(Comparison(t["metric"], stages[0], stages[1] if len(stages) == 2 else None, op, float(margin)))
        out.append(Claim(str(c["name"]), str(c.get("text") or c["name"]), tuple(comps)))
    return tuple(out)


def check(claims: tuple[Claim, ...], rows: dict[str, dict], per_prompt: dict[str, dict]) -> list[dict]:
    """Every claim's status and its comparisons, in the file's order."""
    out = []
    for c in claims:
        comps = [check_comparison(t, rows, per_prompt) for t in c.comparisons]
        status = next((s for s in WORST if any(t["status"] == s for t in comps)), "holds")
        out.append({"name": c.name, "claim": c.text, "status": status, "comparisons": comps})
    return out


def failures(results: list[dict], run: str) -> list[str]:
    """One line per claim that does not hold, naming it and its numbers."""
    return [f"{run}: claim {c['status']}: {c['claim']}: "
            + "; ".join(f"{t['status']}: {t['why']}" for t in c["comparisons"] if t["status"] != "holds")
            for c in results if c["status"] != "holds"]


# --- the per-prompt numbers the comparisons bootstrap over ------------------------------------------------

Numbers = dict[str, dict[tuple, tuple[float, float]]]  # metric -> {(prompt id, occurrence): (numerator, denominator)}


def eval_numbers(path: Path) -> Numbers:
    """Per prompt of an eval dir's rows: pass@1 (its mean accuracy reward, over 1) and language consistency
    (consistent samples, over its samples with a verdict). {} when the rows cannot be read (not an r1 eval)."""
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError):
        return {}
    if not {"id", "sample_index"} <= set(ds.column_names):
        return {}
    cols = {c: [None] * len(ds) for c in ("reward_accuracy", "language_consistent")}
    cols.update(ds.select_columns([c for c in ("id", "sample_index", *cols) if c in ds.column_names]).to_dict())
    out: Numbers = {"pass@1": {}, "language_consistency_rate": {}}
    seen: dict[str, int] = {}
    groups: list[list[int]] = []
    for i, j in enumerate(cols["sample_index"]):
        if j == 0 or not groups:
            groups.append([])
        groups[-1].append(i)
    for g in groups:
        pid = str(cols["id"][g[0]])
        key = (pid, seen.get(pid, 0))  # the same id twice: its occurrences are different prompts
        seen[pid] = key[1] + 1
        acc = [cols["reward_accuracy"][i] for i in g if cols["reward_accuracy"][i] is not None]
        if acc:
            out["pass@1"][key] = (sum(acc) / len(acc), 1.0)
        lang = [cols["language_consistent"][i] for i in g if cols["language_consistent"][i] is not None]
        if lang:
            out["language_consistency_rate"][key] = (float(sum(lang)), float(len(lang)))
    return out


def general_numbers(m: dict, side: str) -> Numbers:
    """Per general prompt of align's before/after measurement: helpfulness (RM score sum over its
    samples, over its samples) and safe rate (safe samples, over its samples); {} for an align
    manifest made before they were recorded."""
    pp = (((m.get("metrics") or {}).get("general_eval") or {}).get(side) or {}).get("per_prompt")
    if not pp:
        return {}
    out: Numbers = {"helpfulness": {}, "safe_rate": {}, "right_reply": {}}
    seen: dict[str, int] = {}
    for i, pid in enumerate(map(str, pp["id"])):
        key = (pid, seen.get(pid, 0))
        seen[pid] = key[1] + 1
        n = float(pp["n"][i])
        if pp.get("helpfulness_score_sum"):
            out["helpfulness"][key] = (pp["helpfulness_score_sum"][i], n)
        if pp.get("safe_count"):
            out["safe_rate"][key] = (float(pp["safe_count"][i]), n)
        if pp.get("right_count"):
            out["right_reply"][key] = (float(pp["right_count"][i]), n)
    return out
