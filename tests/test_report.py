"""`make smoke` (the whole toy chain, a couple of steps per stage) and `r1 report` on what it wrote:
the chain's manifests point at the previous stage's dirs, the report's numbers are the manifests'
numbers, the plots are PNGs; several runs, unfinished and re-made stages; the exit-2 cases."""

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what each stage of the smoke chain read (the smoke SFT trains on the cold-start set: see the Makefile)
CHAIN = {
    "r1zero": ["base", "data/rl"], "coldstart": ["base", "data/coldstart", "data/coldstart_general"], "grpo": ["coldstart", "data/rl"],
    "grpo_nolang": ["coldstart", "data/rl"], "rs": ["grpo", "data/rl"], "rs_general": ["grpo", "data/general"],
    "sft": ["base", "data/coldstart"], "rm_helpful": ["base", "data/helpful_pairs", "data/helpful_pairs_eval"], "rm_safety": ["base", "data/safety"],
    "align": ["sft", "data/rl", "data/general", "rm_helpful", "rm_safety", "data/general_eval"],
    **{f"eval/{c}": [c, "data/eval"] for c in ("base", "r1zero", "coldstart", "grpo", "grpo_nolang", "sft", "align")},
    "eval/base_r1zero": ["base", "data/eval"],
}
# row role -> label; every row's checkpoint dir is its role, except the base under the r1zero template
LABELS = {"base": "base", "base_r1zero": "base, r1zero template", "r1zero": "R1-Zero", "coldstart": "cold start", "grpo": "stage-2 RL",
          "grpo_nolang": "stage-2 RL, no language reward", "sft": "stage-3 SFT", "align": "stage-4 align"}


def manifest(d: Path) -> dict:
    return json.loads((d / "r1.json").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """`make smoke` into a temp dir, with this interpreter's environment and no install step."""
    run = tmp_path_factory.mktemp("smoke") / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(["make", "-C", str(ROOT), "smoke", f"SMOKE_RUN={run}", f"VENV={sys.prefix}",
                           "-o", f"{sys.prefix}/.installed"], capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke: passed" in proc.stdout
    return run


def test_demo_lanes_stop_together_when_the_chain_fails(tmp_path):
    """`make demo` runs two lanes side by side (the chain, and the side work that waits for the chain's
    stages): when the chain fails, the side lane stops waiting and make exits non-zero, naming the stage."""
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(["make", "-C", str(ROOT), "lanes", "SMOKE=1", f"RUN={run}", f"VENV={sys.prefix}",
                           "SIDE_GOALS=$(SIDE) $(RUN)/report", "DATA_SET=--set n_rl=0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert "n_rl" in proc.stderr and f"make: the chain lane stopped before {run}/base" in proc.stdout
    assert list(run.iterdir()) == []  # nothing built, and the lanes' exit files are gone


@pytest.mark.slow
def test_smoke_chain_links_each_stage_to_the_one_before(smoke):
    for d, wanted in CHAIN.items():
        inputs = manifest(smoke / d)["inputs"]
        assert [Path(i["path"]).relative_to(smoke).as_posix() for i in inputs] == wanted, d
        for i, w in zip(inputs, wanted):
            assert i["fingerprint"] == manifest(smoke / w)["fingerprint"], (d, w)
    assert manifest(smoke / "report")["kind"] == "report"


@pytest.mark.slow
def test_report_numbers_are_the_manifests_numbers(smoke, tmp_path, run_r1):
    out = tmp_path / "report"
    proc = run_r1("report", smoke, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "stage 3 SFT" in proc.stdout and "pass@1" in proc.stdout  # the terminal table
    md = (out / "report.md").read_text()
    data = json.loads((out / "report.json").read_text())
    rows = {r["row"]: r for r in data["runs"][0]["stage_table"]}
    assert list(rows) == list(LABELS)  # the paper's order
    for role, label in LABELS.items():
        d = "base" if role == "base_r1zero" else role
        assert f"| {label} | {d} |" in md and rows[role]["dir"] == d
        ev, ck = manifest(smoke / "eval" / role)["metrics"], manifest(smoke / d)
        for key in ("pass@1", "cons@k", "format_rate", "language_consistency_rate", "mean_completion_tokens"):
            assert rows[role][key] == ev[key], (role, key)
        assert rows[role]["eval_dir"] == f"eval/{role}"
        assert rows[role]["wall_time_s"] == (None if role == "base_r1zero" else ck["wall_time_s"])
    assert rows["base_r1zero"]["eval"]["template"] == "r1zero" and rows["base"]["eval"]["template"] == "r1"
    general = manifest(smoke / "align")["metrics"]["general_eval"]
    assert rows["sft"]["helpfulness"] == general["before"]["helpfulness_score_mean"]
    assert rows["align"]["safe_rate"] == general["after"]["safe_rate"]
    assert rows["grpo"]["helpfulness"] is None and "| – |" in md
    # curves: every RL stage logged reward, accuracy and length; R1-Zero has no language reward, so says so
    assert sorted(data["plots"]) == ["accuracy.png", "completion_length.png", "language_consistency.png", "reward.png"]
    assert any("not logged by" in n and "r1zero" in n for n in data["not_plotted"])
    for name in data["plots"]:
        raw = (out / name).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
        width, height = struct.unpack(">II", raw[16:24])
        assert width > 200 and height > 100 and f"({name})" in md
    assert data["problems"] == [] and manifest(out)["kind"] == "report"


@pytest.mark.slow
def test_several_runs_unfinished_and_remade_stages(smoke, tmp_path, run_r1):
    other = tmp_path / "seed1"  # the same run as if made at `other`: its manifests name their inputs there
    shutil.copytree(smoke, other, ignore=shutil.ignore_patterns("report"))
    for f in other.rglob("r1.json"):
        f.write_text(f.read_text().replace(str(smoke), str(other)))
    m = manifest(other / "eval/grpo")
    m["metrics"]["pass@1"] = 0.5
    (other / "eval/grpo/r1.json").write_text(json.dumps(m))
    (other / "grpo_nolang.partial").mkdir()  # an interrupted stage
    out = tmp_path / "report"
    proc = run_r1("report", smoke, other, "--out", out)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "report.json").read_text())
    across = {r["dir"]: r for r in data["across_runs"]}
    first = manifest(smoke / "eval/grpo")["metrics"]["pass@1"]
    assert across["grpo"]["pass@1"] == pytest.approx({"mean": (first + 0.5) / 2, "min": min(first, 0.5),
                                                     "max": max(first, 0.5), "n": 2})
    md = (out / "report.md").read_text()
    assert "## Across 2 runs" in md and "## Unfinished stages" in md and "grpo_nolang.partial" in md

    # grpo made again after its evaluation and rejection sampling read it: --check fails, the report says so
    m = manifest(other / "grpo")
    m["fingerprint"] = "sha256:" + "0" * 32
    (other / "grpo/r1.json").write_text(json.dumps(m))
    proc = run_r1("report", other, "--out", out, "--force", "--check")
    assert proc.returncode == 1
    data = json.loads((out / "report.json").read_text())
    assert any("eval/grpo: its input grpo has changed" in p for p in data["problems"])
    assert any("grpo_nolang.partial is unfinished" in p for p in data["problems"])
    assert "evaluated an earlier version of grpo" in (out / "report.md").read_text()


@pytest.mark.parametrize("case", ["empty", "plain files", "missing", "a stage dir", "out exists"])
def test_bad_run_dirs_exit_2(case, tmp_path, run_r1, toy_data):
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "report"
    want = "nothing to report"
    if case == "plain files":
        (run / "notes.txt").write_text("hello")
        (run / "eval").mkdir()
    elif case == "missing":
        run, want = tmp_path / "nope", "is not a directory"
    elif case == "a stage dir":
        run, want = toy_data / "eval", "is a stage output"
    elif case == "out exists":
        shutil.copytree(toy_data, run / "data")
        out.mkdir()
        want = "exists"
    proc = run_r1("report", run, "--out", out)
    assert proc.returncode == 2 and want in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not Path(f"{out}.partial").exists() and (case == "out exists" or not out.exists())


def test_terminal_table_fits_80_columns_without_cutting_a_number(tmp_path, run_r1, monkeypatch):
    """`r1 report RUN | cat` (no terminal, COLUMNS unset: rich's 80 columns) with wide numbers: a 2-hour
    stage, 100.0% with a 100.0–100.0 CI, four-digit token counts, negative RM scores; one run and two."""
    from fake_run import fake_run

    from r1cli.report_render import SHORT_LABELS, ci, fmt

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    runs = [fake_run(tmp_path / f"seed{s}", pass1={"r1zero": 1.0}, language={"grpo": 1.0}, wall_time=7505.0,
                     tokens=1234, helpful=(-0.512, -0.3), n_prompts=40, seed=s) for s in (0, 1)]
    for args in ([runs[0]], runs):
        out = tmp_path / f"report{len(args)}"
        proc = run_r1("report", *args, "--out", out)
        assert proc.returncode == 0, proc.stderr
        # the `wrote OUT` line keeps its path whole, as a log needs it
        lines = [x for x in proc.stdout.splitlines() if not x.startswith("wrote ")]
        assert max(map(len, lines)) <= 80 and "…" not in proc.stdout, proc.stdout
        data = json.loads((out / "report.json").read_text())
        keys = ("format_rate", "language_consistency_rate", "mean_completion_tokens", "helpfulness",
                "right_reply", "safe_rate", "wall_time_s")  # report.md has cons@k too
        table = data["runs"][0]["stage_table"]
        assert table
        for r in table:
            want = [fmt("pass@1", r["pass@1"]), ci(r["pass@1_ci"]), *(fmt(k, r[k]) for k in keys)]
            assert any(line.split()[-len(want):] == want and line.startswith(SHORT_LABELS[r["row"]])
                       for line in lines), (want, proc.stdout)
        assert "2h05m" in proc.stdout and "100.0–100.0" in proc.stdout and " -0." in proc.stdout
        if len(args) == 2:  # the across-runs table: mean, then ± half the spread on the next line
            assert "across 2 runs" in proc.stdout and data["across_runs"]
            for r in data["across_runs"]:
                mean = [fmt(k, r[k]["mean"]) if r[k] else "–" for k in ("pass@1", *keys)]
                assert any(line.split()[-len(mean):] == mean for line in lines), (mean, proc.stdout)
