"""Claims as data (r1cli/claims.py): the toy's claims file (recipes/toy/claims.yaml) checked by `r1 report
--claims`, and `--fail-on-claims` as a guard: on made-up run dirs (tests/fake_run.py: real manifests and eval
rows, no training)."""

from __future__ import annotations

import json
import re

import pytest
from fake_run import fake_run

from pathlib import Path

from r1cli.claims import Comparison, check, check_comparison, load_claims
from r1cli.errors import UserError
from r1cli.report_render import ROLES, fmt

TOY_CLAIMS = Path(__file__).resolve().parents[1] / "recipes" / "toy" / "claims.yaml"
CLAIMS = load_claims(TOY_CLAIMS, tuple(r for r, _ in ROLES))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """good: every claim holds. bad: the SFT below the cold start, no eval of the base under the r1zero
    template, and align leaves the safe rate where it was (100%)."""
    d = tmp_path_factory.mktemp("claims")
    return {"good": fake_run(d / "good"),
            "bad": fake_run(d / "bad", pass1={"sft": 0.55}, skip=("eval/base_r1zero",), right=(0.6, 0.3))}


def report(run_r1, run, out, *flags):
    proc = run_r1("report", run, "--out", out, *flags)
    data = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return proc, data


def statuses(data) -> dict:
    return {c["name"]: c["status"] for c in data["runs"][0]["claims"]}


def test_claims_hold_on_a_run_that_meets_them(runs, run_r1, tmp_path):
    proc, data = report(run_r1, runs["good"], tmp_path / "r", "--claims", TOY_CLAIMS, "--fail-on-claims")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(data) == {c.name: "holds" for c in CLAIMS} and data["claims_failed"] == []
    assert "claims check failed" not in proc.stdout and proc.stdout.count("claim holds:") == len(CLAIMS)
    # each pass@1 has its CI, around it
    table = data["runs"][0]["stage_table"]
    assert table
    for r in table:
        lo, hi = r["pass@1_ci"]
        assert lo <= r["pass@1"] <= hi


def test_claims_guard_names_the_claim_and_its_numbers(runs, run_r1, tmp_path):
    run = runs["bad"]
    proc, data = report(run_r1, run, tmp_path / "r", "--claims", TOY_CLAIMS, "--fail-on-claims")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert statuses(data) == {"r1zero": "not measured", "stage2": "holds", "language": "holds", "sft": "fails",
                              "align": "fails"}
    out = " ".join(proc.stdout.split())  # rich wraps long lines
    sft, cold = (json.loads((run / "eval" / n / "r1.json").read_text())["metrics"]["pass@1"] for n in ("sft", "coldstart"))
    assert "claim fails: stage-3 SFT from the base >= cold start" in out
    assert f"pass@1 sft {fmt('pass@1', sft)} - coldstart {fmt('pass@1', cold)}" in out
    assert "claim not measured: R1-Zero > base" in out and "no pass@1 for base_r1zero" in out
    assert re.search(r"right_reply align [\d.]+ - sft [\d.]+ = -[\d.]+ points .*needs >= -5.0 points", out)  # right replies fell
    assert "claims check failed:" in out and "3 of 5 claims do not hold (r1zero not measured, sft fails, align fails)" in out
    sft_cmp = next(c for c in data["runs"][0]["claims"] if c["name"] == "sft")["comparisons"][0]
    assert sft_cmp["value"] == pytest.approx(sft - cold, abs=1e-4) and sft_cmp["ci"][1] < 0
    # without --fail-on-claims the report is written and says the same, and exits 0 (`make demo` shows the claims)
    proc, data2 = report(run_r1, run, tmp_path / "r2", "--claims", TOY_CLAIMS)
    assert proc.returncode == 0 and statuses(data2) == statuses(data)
    assert "claim fails: stage-3 SFT" in " ".join(proc.stdout.split()) and "claims check failed" not in proc.stdout
    md = (tmp_path / "r2" / "report.md").read_text()
    assert f"| {CLAIMS[3].text} | fails |" in md


def rows_and_numbers(a: list[float], b: list[float], metric: str = "pass@1"):
    rows = {"grpo": {metric: sum(a) / len(a)}, "coldstart": {metric: sum(b) / len(b)}}
    nums = {"grpo": {metric: {(str(i), 0): (x, 1.0) for i, x in enumerate(a)}},
            "coldstart": {metric: {(str(i), 0): (x, 1.0) for i, x in enumerate(b)}}}
    return rows, nums


def test_a_difference_within_its_interval_is_unclear_and_identical_evals_meet_a_zero_margin():
    t = Comparison("pass@1", "grpo", "coldstart", ">=", 0.10)
    # +12.5 points on 8 prompts: meets the margin, but 8 prompts cannot tell it from +0
    a, b = [1, 1, 0.5, 1, 0.75, 1, 1, 0.5], [1, 0.75, 0.5, 0.75, 0.5, 1, 0.75, 0.5]
    res = check_comparison(t, *rows_and_numbers(a, b))
    assert res["status"] == "unclear" and res["value"] == pytest.approx(0.125) and res["ci"][0] < 0.10
    assert "needs >= +10.0 points" in res["why"] and "8 prompts" in res["why"]
    # the same gap on 200 prompts is beyond the interval
    assert check_comparison(t, *rows_and_numbers(a * 25, b * 25))["status"] == "holds"
    # identical evals: ">=" 0 holds (the CI of the difference is [0, 0]), ">" 0 fails
    same = rows_and_numbers(a, a)
    assert check_comparison(Comparison("pass@1", "grpo", "coldstart", ">="), *same)["status"] == "holds"
    assert check_comparison(Comparison("pass@1", "grpo", "coldstart", ">"), *same)["status"] == "fails"


def test_numbers_without_per_prompt_scores_are_unclear_and_missing_rows_not_measured():
    # an align manifest made before per-prompt RM scores were recorded: a point estimate, no CI
    rows = {"sft": {"pass@1": 0.9, "helpfulness": 0.3, "safe_rate": 0.5, "right_reply": 0.5},
            "align": {"pass@1": 0.9, "helpfulness": 0.5, "safe_rate": 0.9, "right_reply": 0.5}}
    res = {c["name"]: c for c in check(CLAIMS, rows, {})}
    align = res["align"]
    assert align["status"] == "unclear" and all(t["status"] == "unclear" for t in align["comparisons"])
    assert "no per-prompt numbers for a CI" in align["comparisons"][1]["why"]
    assert res["r1zero"]["status"] == res["stage2"]["status"] == "not measured"
    # the worst comparison decides: a failing one outranks a missing one
    rows["align"]["safe_rate"] = 0.4
    del rows["align"]["helpfulness"]
    assert {c["name"]: c for c in check(CLAIMS, rows, {})}["align"]["status"] == "fails"


def test_make_demo_check_is_the_guard(runs):
    """`make demo-check RUN=...` builds nothing and fails on the run whose claims do not hold."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    for name, code in (("good", 0), ("bad", 2)):  # make exits 2 when a recipe fails
        proc = subprocess.run(["make", "-C", str(root), "demo-check", f"RUN={runs[name]}", f"VENV={sys.prefix}"],
                              check=False, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert ("claims check failed" in proc.stdout) == (name == "bad")
        assert json.loads((runs[name] / "report" / "r1.json").read_text())["metrics"]["claims_failed"] == 3 * (name == "bad")
    # the stage-3b ablation beside the run is checked too: one with nothing in it is an error
    abl = runs["good"].parent / f"{runs['good'].name}-ablation"
    abl.mkdir()
    proc = subprocess.run(["make", "-C", str(root), "demo-check", f"RUN={runs['good']}", f"VENV={sys.prefix}"],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    abl.rmdir()
    assert proc.returncode == 2 and "general_sft or" in proc.stderr, proc.stdout + proc.stderr


def test_the_toy_claims_file_is_the_five_claims_of_the_toy_table():
    assert [c.name for c in CLAIMS] == ["r1zero", "stage2", "language", "sft", "align"]
    stage2 = CLAIMS[1].comparisons[0]
    assert (stage2.metric, stage2.a, stage2.b, stage2.op, stage2.margin) == ("pass@1", "grpo", "coldstart", ">=", 0.10)
    assert [(t.metric, t.b) for t in CLAIMS[2].comparisons] == [("language_consistency_rate", None),
                                                                ("language_consistency_rate", "grpo_nolang")]


def test_a_users_claims_file_is_checked_and_its_mistakes_are_one_line(runs, run_r1, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("- name: sft_up\n  compare: {metric: pass@1, stages: [sft, base], op: '>', margin: 0.05}\n")
    proc, data = report(run_r1, runs["good"], tmp_path / "r", "--claims", mine, "--fail-on-claims")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(data) == {"sft_up": "holds"}
    roles = tuple(r for r, _ in ROLES)
    for text, message in (("- name: x\n  compare: {metric: accuracy, stages: [sft], op: '>'}\n", "metric 'accuracy'"),
                          ("- name: x\n  compare: {metric: pass@1, stages: [stage9], op: '>'}\n", "stages must list"),
                          ("- name: x\n  compare: {metric: pass@1, stages: [sft], op: '=>'}\n", "op must be one of"),
                          ("{name: x}\n", "must be a non-empty list"), ("- [\n", "not valid YAML")):
        mine.write_text(text)
        with pytest.raises(UserError, match=message):
            load_claims(mine, roles)
    proc = run_r1("report", runs["good"], "--out", tmp_path / "r3", "--fail-on-claims")
    assert proc.returncode == 2 and "--fail-on-claims needs --claims FILE" in proc.stderr
    assert not (tmp_path / "r3").exists()


def test_the_readme_tables_are_pasted_from_the_report(runs, run_r1, tmp_path):
    from r1cli.toy.readme import BEGIN, END, paste

    out = tmp_path / "r"
    assert report(run_r1, runs["good"], out, "--claims", TOY_CLAIMS)[0].returncode == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\n| old | table |\n{END}\nafter\n")
    paste(out, readme)
    text = readme.read_text()
    md = (out / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| stage-3 SFT")]
    assert rows and all(r in text for r in rows) and "| old | table |" not in text
    assert "| R1-Zero > base (pass@1; the base under the r1zero template) | holds |" in text
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{END}\nafter\n") and "on seed " in text


def test_the_readme_tables_of_several_runs_name_every_seed(runs, run_r1, tmp_path):
    from r1cli.toy.readme import BEGIN, END, paste

    out = tmp_path / "r"
    run_r1("report", runs["good"], runs["bad"], "--out", out, "--claims", TOY_CLAIMS)
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    paste(out, readme)
    text = readme.read_text()
    assert f"`r1 report {runs['good']} {runs['bad']}` on seeds ?, ?" in text  # fake runs have no data manifest
    assert "Across 2 runs" in text and "| claim | seed ? | seed ? |" in text and "## Stage table" not in text
    # each claim's status on each run; one that does not hold names its comparison
    assert "| r1zero | holds | not measured (pass@1 r1zero - base_r1zero" in text and "| stage2 | holds | holds |" in text
    assert "stage-3b ablation" not in text  # neither run has one


def test_the_readme_tables_add_the_stage_3b_ablation_of_each_run_that_has_one(runs, run_r1, tmp_path):
    from datasets import Dataset

    from r1cli.toy.readme import BEGIN, END, paste

    abl = runs["good"].parent / f"{runs['good'].name}-ablation"
    right = {"sft": ["red"] * 8, "sft_nogeneral": ["blue"] * 6 + ["red"] * 2}
    for name, replies in right.items():
        Dataset.from_dict({"id": [f"p{i}" for i in range(8)], "completion": replies, "answer": ["red"] * 8}).save_to_disk(
            str(abl / f"general_{name}"))
        (abl / f"general_{name}" / "r1.json").write_text(json.dumps({"metrics": {"format_rate": 0.0, "n_prompts": 8, "n_samples": 8}}))
        Dataset.from_dict({"reward_harmlessness": [1.0] * 8}).save_to_disk(str(abl / f"rm_{name}"))
        (abl / f"rm_{name}" / "r1.json").write_text(json.dumps({"metrics": {"helpfulness_mean": 0.0}}))
    out = tmp_path / "r"
    run_r1("report", runs["good"], runs["bad"], "--out", out, "--claims", TOY_CLAIMS)
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    try:
        paste(out, readme)
    finally:
        import shutil
        shutil.rmtree(abl)
    text = readme.read_text()
    assert "The stage-3b ablation (`python -m r1cli.toy.ablation RUN-ablation`, 8 held-out general prompts" in text
    assert "| right replies, % | seed ? |" in text  # only the run with an ablation has a column
    assert "| SFT with rs_general | 100.0 |" in text and "| SFT without rs_general | 25.0 |" in text
    assert "| difference (95% CI) | +75.0 (" in text and "): holds |" in text


def test_the_report_shows_what_the_base_copies(runs, run_r1, tmp_path):
    proc, data = report(run_r1, runs["good"], tmp_path / "r")
    base = next(r for r in data["runs"][0]["stage_table"] if r["row"] == "base")
    assert base["copying"] == {"repeat": 0.98, "repeat_cot": 0.95, "translate": 0.9, "operands": 1.0}
    assert "copies (greedy, held-out prompts): repeat 98.0%, repeat_cot 95.0%, translate 90.0%, operands 100.0%" in \
        (tmp_path / "r" / "report.md").read_text()
