"""`r1 data filter --pass-rate MIN..MAX --from EVAL_OR_REJECT_SAMPLE_DIR --to OUT [DATASET]`: keep the
prompts whose measured pass rate lies in the range (DAPO's dynamic sampling, offline)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from r1cli.artifacts import stage_output
from r1cli.cli import main
from r1cli.data import save_dataset
from test_reject_sample import world  # noqa: F401 (the tiny reasoner and its prompts: a module fixture)

ROOT = Path(__file__).resolve().parents[1]

PROMPTS = [{"id": f"p{i}", "prompt": f"question {i}", "answer": str(i), "domain": "math", "language": "en"}
           for i in range(5)]
# the accuracy of each prompt's 4 samples: pass rates 0, 0.25, 0.5, 1, and p4 not measured
ACCURACY = {"p0": [0, 0, 0, 0], "p1": [1, 0, 0, 0], "p2": [1, 1, 0, 0], "p3": [1, 1, 1, 1]}


def _dir(path, stage: str, rows: list[dict], config: dict | None = None):
    with stage_output(path, kind="eval" if stage == "eval" else "dataset", stage=stage, config=config or {}) as run:
        save_dataset(Dataset.from_list(rows), run.partial)
    return path


def _eval_dir(tmp_path):
    rows = [{**p, "sample_index": j, "completion": "c", "reward_accuracy": float(a)}
            for p in PROMPTS if p["id"] in ACCURACY for j, a in enumerate(ACCURACY[p["id"]])]
    return _dir(tmp_path / "eval", "eval", rows)


def _prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


def test_filter_from_an_eval_dir(tmp_path):
    ev = _eval_dir(tmp_path)
    main(["data", "filter", str(_prompts(tmp_path)), "--from", str(ev), "--pass-rate", "0.2..0.9",
          "--to", str(tmp_path / "mid")])
    out = load_from_disk(str(tmp_path / "mid"))
    assert out["id"] == ["p1", "p2"] and out["pass_rate"] == [0.25, 0.5] and out["answer"] == ["1", "2"]
    m = json.loads((tmp_path / "mid" / "r1.json").read_text())
    assert m["stage"] == "data-filter" and m["config"]["pass_rate"] == [0.2, 0.9]
    assert m["counts"] | {"by_domain": None} == {"rows_in": 5, "kept": 2, "below": 1, "above": 1, "unmeasured": 1,
                                                 "by_domain": None}
    # without DATASET, the prompts are the ones the eval dir measured (its per-sample columns dropped)
    main(["data", "filter", "--from", str(ev), "--pass-rate", "1..1", "--to", str(tmp_path / "solved")])
    out = load_from_disk(str(tmp_path / "solved"))
    assert out["id"] == ["p3"] and "completion" not in out.column_names and "reward_accuracy" not in out.column_names


def test_filter_from_a_reject_sample_dir(tmp_path):
    # n=4, chunks of 2, --limit 4: p0..p3 sampled; p2 and p3 passed 2 and 4; p0, p1 none (so no rows); p4 not covered
    rows = [{"id": f"{s}-{j}", "source_id": s, "messages": [{"role": "user", "content": "q"}], "passed": n}
            for s, n in (("p2", 2), ("p3", 4)) for j in range(n)]
    rs = _dir(tmp_path / "rs", "reject-sample", rows,
              {"mode": "reasoning", "n": 4, "chunk_size": 2, "limit": 4, "num_shards": 1, "shard_index": 0})
    main(["data", "filter", str(_prompts(tmp_path)), "--from", str(rs), "--pass-rate", "0..0.5",
          "--to", str(tmp_path / "out")])
    out = load_from_disk(str(tmp_path / "out"))
    assert out["id"] == ["p0", "p1", "p2"] and out["pass_rate"] == [0.0, 0.0, 0.5]
    counts = json.loads((tmp_path / "out" / "r1.json").read_text())["counts"]
    assert counts["unmeasured"] == 1 and counts["above"] == 1


def test_reject_sample_records_each_prompts_pass_count(world, tmp_path):
    """A real (tiny) r1 reject-sample run writes the `passed` column the filter reads. The model is the
    tiny reasoner of test_reject_sample.py (it answers its prompts in the R1 format, some right, some
    wrong): the toy base solves nothing, so its runs have no rows for a check to cover."""
    out = tmp_path / "rs"
    main(["reject-sample", "--model", str(world["model"]), "--data", str(world["data"]), "--out", str(out),
          "--recipe", str(ROOT / "recipes/toy/reject_sample.yaml"), "--set", "limit=6", "--set", "n=4",
          "--set", "chunk_size=2", "--set", "sampling.max_new_tokens=64", "--set", "verifier_general=rule"])
    ds = load_from_disk(str(out))
    assert len(ds) > 0 and "passed" in ds.column_names and all(1 <= p <= 4 for p in ds["passed"])
    # one count per prompt, on each of its rows; duplicates count as passed but are not rows
    passed = {}
    for r in ds:
        assert passed.setdefault(r["source_id"], r["passed"]) == r["passed"], r["source_id"]
    rows_of = {s: ds["source_id"].count(s) for s in passed}
    assert all(rows_of[s] <= n for s, n in passed.items())
    # the reasoner: p000 and p001 right every time, p002 (mixed language) and p003 (wrong) never, p004 sometimes
    assert {"p000", "p001", "p004"} <= set(passed) and not {"p002", "p003"} & set(passed)
    assert passed["p000"] == passed["p001"] == 4 and 1 <= passed["p004"] <= 3
    main(["data", "filter", str(world["data"]), "--from", str(out), "--pass-rate", "0..1", "--to",
          str(tmp_path / "f")])
    counts = json.loads((tmp_path / "f" / "r1.json").read_text())["counts"]
    assert counts["kept"] == 6 and counts["unmeasured"] == counts["rows_in"] - 6
    # a band inside 0..1 keeps the prompts whose pass rate, read from `passed`, lies in it
    main(["data", "filter", str(world["data"]), "--from", str(out), "--pass-rate", "0.2..0.9", "--to",
          str(tmp_path / "mid")])
    mid = load_from_disk(str(tmp_path / "mid"))
    assert mid["id"] == ["p004"] and mid["pass_rate"] == [passed["p004"] / 4]
    counts = json.loads((tmp_path / "mid" / "r1.json").read_text())["counts"]
    assert (counts["below"], counts["above"]) == (3, 2)  # p002, p003, p005 never pass; p000, p001 always


@pytest.mark.parametrize("args,msg", [
    (["--pass-rate", "0.9..0.1"], "0 <= MIN <= MAX <= 1"),
    (["--pass-rate", "half"], "must look like MIN..MAX"),
    (["--pass-rate", "0..1", "--from", "{data}"], "not an r1 eval or r1 reject-sample dir"),
    (["--pass-rate", "0..1", "--from", "{rs}"], "give the prompt DATASET"),
    (["--pass-rate", "0..1", "--from", "{tmp}/missing"], "missing"),
])
def test_bad_input_exits_2_with_one_line(run_r1, tmp_path, args, msg):
    ev = _eval_dir(tmp_path)
    rs = _dir(tmp_path / "rs", "reject-sample", [{"source_id": "p0", "passed": 1}], {"mode": "reasoning", "n": 4})
    data = _dir(tmp_path / "plain", "data-import", PROMPTS)
    args = [a.format(data=data, rs=rs, tmp=tmp_path) for a in args]
    if "--from" not in args:
        args += ["--from", str(ev)]
    r = run_r1("data", "filter", *args, "--to", tmp_path / "out")
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr and re.search(msg, err[0]), r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# --- by prompt length ------------------------------------------------------------------------------------


def test_filter_by_prompt_tokens_keeps_what_fits_the_model(tmp_path):
    from tiny_lm import save_tiny

    from r1cli.generation.lengths import count_tokens, load_tokenizer
    from r1cli.templates import apply_template

    model = save_tiny(tmp_path / "model")
    rows = PROMPTS + [{"id": "long", "prompt": "x" * 300, "answer": "1", "domain": "math", "language": "en"}]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in rows))
    tok = load_tokenizer(model)
    limit = max(count_tokens(tok, [apply_template(p["prompt"]) for p in PROMPTS]))
    main(["data", "filter", str(data), "--max-prompt-tokens", str(limit), "--model", str(model),
          "--to", str(tmp_path / "fit")])
    assert load_from_disk(str(tmp_path / "fit"))["id"] == [p["id"] for p in PROMPTS]
    m = json.loads((tmp_path / "fit" / "r1.json").read_text())
    assert m["counts"]["too_long"] == 1 and m["counts"]["longest_kept_tokens"] == limit
    assert m["config"]["max_prompt_tokens"] == limit and m["stage"] == "data-filter"


def test_filter_refuses_an_eval_of_other_prompts_and_an_empty_result(tmp_path, capsys):
    ev = _eval_dir(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({**p, "id": f"x{i}"}) + "\n" for i, p in enumerate(PROMPTS)))
    for args, msg in (([str(other), "--pass-rate", "0..1"], "measured none of the 5 prompts"),
                      ([str(_prompts(tmp_path)), "--pass-rate", "0.3..0.4"], "widen --pass-rate")):
        with pytest.raises(SystemExit) as e:
            main(["data", "filter", *args, "--from", str(ev), "--to", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and msg in err and "\n" not in err, err
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
