"""`r1 report`: one page with every stage's numbers and curves, read from the run dirs' manifests
(r1.json), their metrics.jsonl files and the eval dirs of `r1 eval`; never from logs or printed text.

    r1 report runs/demo --out runs/demo/report
    r1 report runs/seed0 runs/seed1 runs/seed2 --out runs/seeds   # + mean ± spread (min–max) across runs

A RUN_DIR holds stage outputs (checkpoints, datasets) and eval/<name> dirs. Each dir is identified
by its manifest's kind and stage (grpo: by its template and language reward); the dir name only
labels a row and pairs eval/<name> with checkpoint <name> (else the eval's model fingerprint does).
Writes REPORT_DIR/report.md, report.json (the same numbers; rates as fractions) and one PNG per
training curve (rendering: r1cli/report_render.py). Each pass@1 has a 95% bootstrap CI over the eval's
prompts, and each of the README's stage claims (r1cli/claims.py) a status: holds (beyond the CI of
the difference), unclear, fails or not measured.
--check exits 1 when a stage is unfinished or an input a manifest records inside a run is missing or
no longer has the recorded fingerprint; --claims exits 1 when a claim does not hold (`make demo-check`).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from r1cli import report_render
from r1cli.artifacts import PARTIAL, check_output, fingerprint, partial_path, read_manifest, stage_output
from r1cli.claims import Numbers, eval_numbers, general_numbers, load_claims
from r1cli.claims import check as check_claims
from r1cli.claims import failures as claim_failures
from r1cli.errors import UserError
from r1cli.report_render import COLUMNS, CURVES, EVAL_KEYS, RL_ROLES, ROLES
from r1cli.stats import bootstrap_ci

# --- reading a run dir ------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    path: Path
    dirs: dict[str, dict] = field(default_factory=dict)  # finished stage dirs: relative name -> manifest
    unfinished: list[dict] = field(default_factory=list)


def scan(path: Path, skip: set[Path]) -> Run:
    """Every finished r1 dir in RUN_DIR and one level below (eval/<name>, data/<split>), and the unfinished ones."""
    if not path.is_dir():
        raise UserError(f"RUN_DIR {path} is not a directory: give a run dir such as runs/demo")
    m = read_manifest(path)
    if m is not None:
        raise UserError(f"RUN_DIR {path} is a stage output ({m.get('kind')} dir), not a run dir: give the dir "
                        f"that holds it ({path.parent})")
    run = Run(str(path), path)
    for child in _subdirs(path, skip):
        for d in (child, *([] if child.name.endswith(PARTIAL) else _subdirs(child, skip))):
            rel = d.relative_to(path).as_posix()
            m = read_manifest(d)
            if d.name.endswith(PARTIAL) or (m is not None and m.get("status", "finished") != "finished"):
                run.unfinished.append({"dir": rel, "stage": (m or {}).get("stage"), "status": (m or {}).get("status")})
            elif m is not None and m.get("kind") != "report":
                run.dirs[rel] = m
    return run


def _subdirs(d: Path, skip: set[Path]) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".") and p.resolve() not in skip)


def role(m: dict) -> str | None:
    """Which row of the paper's table a checkpoint is, from its manifest."""
    if m.get("kind") != "checkpoint":
        return None
    stage, cfg = m.get("stage"), m.get("config") or {}
    if stage == "toy-base":
        return "base"
    if stage == "grpo":
        if cfg.get("template") == "r1zero":
            return "r1zero"
        if cfg.get("tools"):
            return "grpo_tools"
        return "grpo" if (cfg.get("rewards") or {}).get("language", 0) else "grpo_nolang"
    return stage if stage in ("coldstart", "sft", "align") else None


def _first_input(m: dict) -> dict:
    return (m.get("inputs") or [{}])[0]


# --- the stage table ----------------------------------------------------------------------------------


def stage_rows(run: Run) -> list[dict]:
    """One row per checkpoint with a role, plus any eval whose model is not in the run."""
    ckpts = {rel: m for rel, m in run.dirs.items() if m["kind"] == "checkpoint"}
    by_fp = {m.get("fingerprint"): rel for rel, m in ckpts.items()}
    rows: dict[str, dict] = {}
    for rel, m in ckpts.items():
        if role(m):
            rows[rel] = _row(role(m), rel, m)
            copying = {k.removeprefix("copy_"): v for k, v in (m.get("metrics") or {}).items() if k.startswith("copy_")}
            if copying:  # what `r1 toy base` measured: can the base copy what later stages must copy?
                rows[rel]["copying"] = copying
                rows[rel]["notes"].append("copies (greedy, held-out prompts): " + ", ".join(
                    f"{k} {report_render.fmt('pass@1', v)}%" for k, v in copying.items()))
    evals = sorted((r, m) for r, m in run.dirs.items() if m["kind"] == "eval")
    # eval/<name> of checkpoint <name> first, so that another eval of the same model does not take its place
    for erel, em in sorted(evals, key=lambda e: Path(e[0]).name not in rows):
        model = _first_input(em)
        name = Path(erel).name
        target = name if name in rows else by_fp.get(model.get("fingerprint"))
        if target is None or target not in rows:
            # a model from outside the run: the base when a first stage started from it
            starts = {_first_input(m).get("fingerprint") for m in ckpts.values() if role(m) in ("r1zero", "coldstart")}
            target = f"{erel} (model {Path(model.get('path', '?')).name})"
            rows[target] = _row("base" if model.get("fingerprint") in starts else "other", None, None)
            rows[target]["label"] = "base" if rows[target]["row"] == "base" else name
        row = rows[target]
        template = (em.get("config") or {}).get("template")
        if row["eval_dir"] is not None and row["row"] == "base" and template == "r1zero" != row["eval"]["template"]:
            # the base under R1-Zero's template: the "before" of the R1-Zero row
            target = f"{target} (r1zero template)"
            rows.setdefault(target, {**_row("base_r1zero", row["dir"], None), "wall_time_s": None})
            row = rows[target]
        if row["eval_dir"] is not None:
            row["notes"].append(f"also evaluated in {erel} (not shown)")
            continue
        row["eval_dir"] = erel
        row.update({k: em["metrics"].get(k) for k in EVAL_KEYS})
        cfg = em.get("config") or {}
        row["eval"] = {"k": em["metrics"].get("k"), "prompts": em["metrics"].get("n_prompts"),
                       "template": cfg.get("template"), "temperature": (cfg.get("sampling") or {}).get("temperature")}
        if row["dir"] and model.get("fingerprint") != ckpts[row["dir"]].get("fingerprint"):
            row["notes"].append(f"{erel} evaluated an earlier version of {row['dir']} (fingerprints differ): re-run it")
    for rel, m in ckpts.items():  # helpfulness and safe rate: align measures them before (its --model) and after
        general = (m.get("metrics") or {}).get("general_eval")
        if role(m) != "align" or not general:
            continue
        before = by_fp.get(_first_input(m).get("fingerprint"))
        for target, side in ((before, "before"), (rel, "after")):
            if target in rows and rows[target]["helpfulness"] is None:
                rows[target]["helpfulness"] = general[side].get("helpfulness_score_mean")
                rows[target]["safe_rate"] = general[side].get("safe_rate")
                rows[target]["right_reply"] = general[side].get("right_reply")
                rows[target]["general_eval"] = {"dir": rel, "side": side}
                rows[target]["notes"].append(f"helpful RM, right reply and safe rate: {rel}'s {side} measurement "
                                             f"({general[side].get('n_prompts')} general prompts)")
    for row in rows.values():
        if row["eval_dir"] is None:
            row["notes"].append("no eval dir: run `r1 eval` on it")
    order = {r: i for i, (r, _) in enumerate(ROLES)}
    return sorted(rows.values(), key=lambda r: (order.get(r["row"], len(order)), r["dir"] or r["label"]))


def _row(role_: str, rel: str | None, m: dict | None) -> dict:
    return {"row": role_, "label": dict(ROLES).get(role_, role_), "dir": rel, "stage": (m or {}).get("stage"),
            "eval_dir": None, **{k: None for k in COLUMNS}, "pass@1_ci": None, "general_eval": None,
            "wall_time_s": (m or {}).get("wall_time_s"), "notes": []}


def across_runs(tables: list[list[dict]]) -> list[dict]:
    """Mean, min and max of each column over the runs, for rows with the same role and dir."""
    groups: dict[tuple, list[dict]] = {}
    for rows in tables:
        for r in rows:
            groups.setdefault((r["row"], r["dir"] or r["label"]), []).append(r)
    out = []
    for (role_, _), rs in groups.items():
        agg = {"row": role_, "label": rs[0]["label"], "dir": rs[0]["dir"], "runs": len(rs)}
        for k in COLUMNS:
            vals = [r[k] for r in rs if isinstance(r[k], (int, float)) and math.isfinite(r[k])]
            agg[k] = ({"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
                      if vals else None)
        out.append(agg)
    return out


# --- per-prompt numbers: confidence intervals and the claims -------------------------------------------

def row_numbers(run: Run, rows: list[dict]) -> list[Numbers]:
    """The per-prompt numbers of each stage-table row, and each row's pass@1 95% CI (set on the row)."""
    cache: dict[str, Numbers] = {}
    out = []
    for r in rows:
        nums: Numbers = {}
        if r["eval_dir"]:
            nums.update(cache.setdefault(r["eval_dir"], eval_numbers(run.path / r["eval_dir"])))
        if r["general_eval"]:
            nums.update(general_numbers(run.dirs[r["general_eval"]["dir"]], r["general_eval"]["side"]))
        if nums.get("pass@1"):
            r["pass@1_ci"] = list(bootstrap_ci(list(nums["pass@1"].values())))
        out.append(nums)
    return out


def claim_rows(rows: list[dict], numbers: list[Numbers]) -> tuple[dict[str, dict], dict[str, Numbers]]:
    """{role: row} and {role: per-prompt numbers} for the claims: per role, the row whose dir is named
    after it (as `make demo` names them), else the first."""
    by_role: dict[str, tuple[dict, Numbers]] = {}
    for r, n in sorted(zip(rows, numbers), key=lambda x: (x[0]["dir"] or "") != x[0]["row"]):
        by_role.setdefault(r["row"], (r, n))
    return {k: v[0] for k, v in by_role.items()}, {k: v[1] for k, v in by_role.items()}


# --- curves and lineage --------------------------------------------------------------------------------


def curves(run: Run) -> dict[str, dict[str, list]]:
    """{RL checkpoint dir: {curve: [[step, value], ...]}} from its metrics.jsonl (keys it lacks are left out)."""
    out = {}
    for rel, m in run.dirs.items():
        f = run.path / rel / "metrics.jsonl"
        if role(m) not in RL_ROLES or not f.is_file():
            continue
        series: dict[str, list] = {}
        for line in f.read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            if "train_runtime" in rec:  # TRL's end-of-run summary, not a training step
                continue
            for name, key, _ in CURVES:
                v = rec.get(key)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    series.setdefault(name, []).append([rec.get("step"), v])
        out[rel] = series
    return out


def lineage(run: Run) -> dict[str, list[dict]]:
    """Each dir's inputs: ok (a dir of the run, same fingerprint), changed or missing (inside the run,
    fingerprint differs / gone), or external (outside the run, not checked)."""
    by_fp: dict[str, list[str]] = {}
    for rel, m in run.dirs.items():
        by_fp.setdefault(m.get("fingerprint"), []).append(rel)
    root = run.path.resolve()
    out = {}
    for rel, m in sorted(run.dirs.items()):
        links = []
        for inp in m.get("inputs") or []:
            p, fp = Path(inp.get("path", "")), inp.get("fingerprint")
            same = by_fp.get(fp, [])
            if same:
                name = next((s for s in same if p.as_posix().endswith(s)), same[0])
                links.append({"input": name, "status": "ok"})
            elif p.resolve().is_relative_to(root):
                status = "missing" if not p.exists() else "ok" if fingerprint(p) == fp else "changed"
                links.append({"input": p.resolve().relative_to(root).as_posix(), "status": status})
            else:
                links.append({"input": str(p), "status": "external"})
        out[rel] = links
    return out


def problems(run: Run, links: dict[str, list[dict]]) -> list[str]:
    out = [f"{run.name}/{u['dir']} is unfinished (stage {u['stage'] or '?'}, status {u['status'] or 'no manifest'})"
           for u in run.unfinished]
    for rel, ls in links.items():
        for link in ls:
            if link["status"] in ("changed", "missing"):
                what = "has changed" if link["status"] == "changed" else "is gone"
                out.append(f"{run.name}/{rel}: its input {link['input']} {what} since the stage read it")
    return out


# --- the command ------------------------------------------------------------------------------------------


def run(run_dirs: list[Path], *, out: Path, check: bool = False, claims: Path | None = None,
        fail_on_claims: bool = False, force: bool = False) -> list[str]:
    """Write the report; return what the guards asked for found: --check problems (unfinished stages,
    changed or missing inputs) and, with --fail-on-claims, the claims of --claims FILE that do not hold."""
    from rich.console import Console
    from rich.markup import escape

    if not run_dirs:
        raise UserError("r1 report needs at least one RUN_DIR (e.g. runs/demo)")
    if fail_on_claims and claims is None:
        raise UserError("--fail-on-claims needs --claims FILE: the claims to check (e.g. recipes/toy/claims.yaml)")
    claim_list = load_claims(claims, tuple(r for r, _ in report_render.ROLES)) if claims is not None else ()
    out = check_output(out, force)
    skip = {out.resolve(), partial_path(out).resolve()}
    runs = [scan(Path(d), skip) for d in run_dirs]
    if not any(r.dirs or r.unfinished for r in runs):
        raise UserError(f"nothing to report in {', '.join(map(str, run_dirs))}: no r1 stage output (a dir with "
                        "r1.json) in it or one level below; give run dirs such as runs/demo")
    data = {"runs": []}
    found = []
    failed = []
    for r in runs:
        links = lineage(r)
        found += problems(r, links)
        table = stage_rows(r)
        results = check_claims(claim_list, *claim_rows(table, row_numbers(r, table)))
        failed += claim_failures(results, r.name)
        data["runs"].append({"name": r.name, "path": str(r.path), "stage_table": table, "claims": results,
                             "curves": curves(r), "unfinished": r.unfinished, "lineage": links, "other": others(r)})
    if len(runs) > 1:
        data["across_runs"] = across_runs([x["stage_table"] for x in data["runs"]])
    data["problems"] = found
    data["claims_failed"] = failed
    console = Console()
    inputs = [r.path / rel for r in runs for rel in r.dirs]
    config = {"runs": list(map(str, run_dirs)), "check": check, "claims": str(claims) if claims else None,
              "fail_on_claims": fail_on_claims}
    with stage_output(out, kind="report", stage="report", config=config,
                      inputs=inputs, force=force) as run_:
        data["plots"], data["not_plotted"] = report_render.plot_curves(data["runs"], run_.partial)
        (run_.partial / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        (run_.partial / "report.md").write_text(report_render.markdown(data, claims))
        run_.counts.update(runs=len(runs), rows=sum(len(x["stage_table"]) for x in data["runs"]),
                           plots=len(data["plots"]))
        run_.metrics.update(problems=len(found), claims_failed=len(failed))
    for x in data["runs"]:
        console.print(report_render.rich_table(x["stage_table"], f"r1 report: {x['name']}"))
        for c in x["claims"]:
            console.print(report_render.claim_line(c), highlight=False)
    if "across_runs" in data:
        title = f"across {len(runs)} runs: mean ± half the min–max spread"
        console.print(report_render.rich_table(data["across_runs"], title))
    for p in found:
        console.print(f"[yellow]{'check failed' if check else 'note'}:[/] {escape(str(p))}")
    if fail_on_claims and failed:
        for x in data["runs"]:
            bad = [f"{c['name']} {c['status']}" for c in x["claims"] if c["status"] != "holds"]
            if bad:
                console.print(f"[red]claims check failed:[/] {escape(str(x['name']))}: {len(bad)} of {len(x['claims'])} claims do "
                              f"not hold ({', '.join(bad)})", highlight=False)
    console.print(f"{out}: report.md, report.json, {len(data['plots'])} plots", markup=False, highlight=False)
    return (found if check else []) + (failed if fail_on_claims else [])


def others(run: Run) -> list[dict]:
    """Top-level dirs that are not rows of the stage table (datasets, reward models), with their counts."""
    out = []
    for rel, m in sorted(run.dirs.items()):
        if "/" in rel or role(m) or m["kind"] == "eval":
            continue
        scalars = {k: v for k, v in {**(m.get("counts") or {}), **(m.get("metrics") or {})}.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and (k in (m.get("counts") or {}) or k.endswith(("accuracy", "rate")))}
        out.append({"dir": rel, "kind": m["kind"], "stage": m.get("stage"), "numbers": scalars,
                    "wall_time_s": m.get("wall_time_s")})
    return out
