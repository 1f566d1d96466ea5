"""The data layer: every input format round-trips, bad inputs are one-line errors (exit 2, no
traceback, no output dir), canonical columns are checked and fixed, `r1 data` commands work."""

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pyarrow as pa
import pytest
from datasets import Dataset, load_from_disk
from hypothesis import given
from hypothesis import strategies as st

from r1cli.artifacts import MANIFEST, partial_path, read_manifest, stage_output
from r1cli.data import load_completions, load_prompts, load_safety, load_sft, load_table, save_dataset, validate
from r1cli.data.formats import gsm8k_answer
from r1cli.errors import UserError

ROWS = [
    {"id": "a", "prompt": [{"role": "user", "content": "1+1?"}], "answer": "2", "domain": "math", "language": "en",
     "source": "x"},
    {"id": "b", "prompt": [{"role": "user", "content": "二加二?"}], "answer": "4", "domain": "math", "language": "zh",
     "source": "y"},
    {"id": "c", "prompt": [{"role": "user", "content": "hi"}], "answer": "", "domain": "general", "language": "en",
     "source": None},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def r1(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "r1cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def cli(capsys, *args):
    """`r1 ...` in this process (a bug's exception propagates, so it fails the test as a traceback would)."""
    from r1cli.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def r1_many(arg_lists):
    """Several independent CLI runs, a few at a time (each pays the ~1 s import of datasets)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda args: r1(*args), arg_lists))


def assert_user_error(res, *words):
    """Exit 2, one line on stderr naming `words`, no traceback."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


# --- loading: every format round-trips -----------------------------------------------------------


def r1_dir(tmp_path, rows=ROWS, name="r1ds", kind="dataset"):
    with stage_output(tmp_path / name, kind=kind, stage="test", config={}) as run:
        save_dataset(Dataset.from_list(rows), run.partial)
    return tmp_path / name


def make_input(tmp_path, fmt):
    ds = Dataset.from_list(ROWS)
    if fmt == "jsonl":
        return write_jsonl(tmp_path / "d.jsonl", ROWS)
    if fmt == "json-array":
        (tmp_path / "d.json").write_text(json.dumps(ROWS, ensure_ascii=False))
        return tmp_path / "d.json"
    if fmt == "parquet":
        ds.to_parquet(str(tmp_path / "d.parquet"))
        return tmp_path / "d.parquet"
    if fmt == "arrow-stream":  # what datasets writes
        save_dataset(ds, tmp_path / "hf")
        return next((tmp_path / "hf").glob("*.arrow"))
    if fmt == "arrow-file":
        with pa.ipc.new_file(str(tmp_path / "d.arrow"), ds.data.table.schema) as w:
            w.write_table(ds.data.table)
        return tmp_path / "d.arrow"
    if fmt == "hf-dir":
        ds.save_to_disk(str(tmp_path / "hf"))
        return tmp_path / "hf"
    if fmt == "r1-dir":
        return r1_dir(tmp_path)
    if fmt == "dir-of-files":  # rows split over a jsonl and a parquet file, read in name order
        d = tmp_path / "files"
        d.mkdir()
        write_jsonl(d / "0.jsonl", ROWS[:2])
        Dataset.from_list(ROWS[2:]).to_parquet(str(d / "1.parquet"))
        return d
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["jsonl", "json-array", "parquet", "arrow-stream", "arrow-file", "hf-dir", "r1-dir",
                                 "dir-of-files"])
def test_every_format_round_trips(tmp_path, fmt):
    path = make_input(tmp_path, fmt)
    assert load_table(path).to_list() == ROWS
    assert load_prompts(path).to_list() == ROWS  # canonical already: validate changes nothing


def test_export_round_trips_through_cli(tmp_path, capsys):
    src = r1_dir(tmp_path)
    for name in ("out.jsonl", "out.parquet"):
        res = cli(capsys, "data", "export", src, "--to", tmp_path / name)
        assert res.returncode == 0, res.stderr
        assert load_table(tmp_path / name).to_list() == ROWS
        assert not partial_path(tmp_path / name).exists()
    assert "二加二" in (tmp_path / "out.jsonl").read_text(encoding="utf-8")  # not \\u escapes
    assert_user_error(cli(capsys, "data", "export", src, "--to", tmp_path / "out.jsonl"), "--force")
    assert cli(capsys, "data", "export", src, "--to", tmp_path / "out.jsonl", "--force").returncode == 0
    assert_user_error(cli(capsys, "data", "export", src, "--to", tmp_path / "out.csv"), ".jsonl")


def test_jsonl_mixed_number_and_string_answers_and_dates(tmp_path):
    # GSM8K-like int answers next to "1/2"; a date-like string must stay a string (pyarrow would
    # make it a timestamp)
    f = write_jsonl(tmp_path / "m.jsonl", [{"prompt": "a", "answer": 3}, {"prompt": "b", "answer": "1/2"},
                                           {"prompt": "c", "answer": "2020-01-01"}, {"prompt": "d", "answer": 2.0}])
    assert load_prompts(f)["answer"] == ["3", "1/2", "2020-01-01", "2"]
    f = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "a", "answer": 12}, {"prompt": "b", "answer": 7}])
    ds = load_prompts(f)
    assert ds["answer"] == ["12", "7"] and ds.features["answer"].dtype == "string"


# --- bad inputs through the CLI ------------------------------------------------------------------


def bad_inputs(tmp_path):
    """name -> (path, words the error names)."""
    cases = {"missing": (tmp_path / "nope.jsonl", ["nope.jsonl", "does not exist"])}
    f = tmp_path / "badline.jsonl"
    f.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": \n{"prompt": "d"}\n')
    cases["bad json line"] = (f, ["badline.jsonl", "line 3", "not JSON"])
    f = tmp_path / "corrupt.parquet"
    f.write_bytes(b"PAR1 this is not parquet at all")
    cases["corrupt parquet"] = (f, ["corrupt.parquet", "Parquet"])
    f = tmp_path / "corrupt.arrow"
    f.write_bytes(b"not arrow")
    cases["corrupt arrow"] = (f, ["corrupt.arrow", "Arrow"])
    f = tmp_path / "empty.jsonl"
    f.write_text("\n")
    cases["empty file"] = (f, ["empty.jsonl", "empty"])
    f = tmp_path / "empty_array.json"
    f.write_text("[]")
    cases["empty array"] = (f, ["empty_array.json", "no rows"])
    ck = tmp_path / "ckpt"
    with stage_output(ck, kind="checkpoint", stage="test", config={}) as run:
        (run.partial / "config.json").write_text("{}")
    cases["checkpoint"] = (ck, ["ckpt is a checkpoint, not a dataset"])
    part = tmp_path / "run.partial"
    save_dataset(Dataset.from_list(ROWS), part)
    cases["partial dir"] = (part, ["run.partial", "unfinished"])
    cases["file inside partial"] = (next(part.glob("*.arrow")), ["unfinished"])
    running = r1_dir(tmp_path, name="running")
    m = read_manifest(running)
    m["status"] = "running"
    (running / MANIFEST).write_text(json.dumps(m))
    cases["unfinished manifest"] = (running, ["running", "unfinished"])
    f = write_jsonl(tmp_path / "nocol.jsonl", [{"question": "a", "reply": "b"}])
    cases["no canonical column"] = (f, ["nocol.jsonl", "question, reply"])
    f = write_jsonl(tmp_path / "num.jsonl", [{"prompt": f"q{i}"} for i in range(7)] + [{"prompt": 7}])
    cases["prompt is a number in row 7"] = (f, ["num.jsonl", "row 7", "'prompt' is a number"])
    f = write_jsonl(tmp_path / "dom.jsonl", [{"prompt": "a", "domain": "math"}, {"prompt": "b", "domain": "maths"}])
    cases["unknown domain"] = (f, ["dom.jsonl", "row 1", "'domain'", "maths", "math, code, stem, logic, general"])
    f = write_jsonl(tmp_path / "toydir.jsonl", [{"prompt": "a"}])
    outer = tmp_path / "toyworld"  # like `r1 toy data OUT`: datasets in sub-dirs
    with stage_output(outer, kind="dataset", stage="test", config={}) as run:
        save_dataset(Dataset.from_list(ROWS), run.partial / "rl")
    cases["dir of datasets"] = (outer, ["toyworld holds several datasets", "rl"])
    return cases


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path):
    cases = bad_inputs(tmp_path)
    outs = {name: tmp_path / f"out-{name.replace(' ', '_')}" for name in cases}
    results = r1_many([("data", "import", path, "--to", outs[name]) for name, (path, _) in cases.items()])
    for (name, (path, words)), res in zip(cases.items(), results):
        assert_user_error(res, *words)
        assert not outs[name].exists() and not partial_path(outs[name]).exists(), name


def test_inspect_and_merge_refuse_bad_inputs_too(tmp_path):
    cases = bad_inputs(tmp_path)
    assert_user_error(r1("data", "inspect", cases["bad json line"][0]), "line 3")
    good = r1_dir(tmp_path)
    res = r1("data", "merge", good, cases["checkpoint"][0], "--to", tmp_path / "m")
    assert_user_error(res, "checkpoint, not a dataset")
    assert not (tmp_path / "m").exists() and not partial_path(tmp_path / "m").exists()


# --- canonical columns -----------------------------------------------------------------------------


def test_missing_column_lists_the_columns_it_has(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "1"}])
    with pytest.raises(UserError, match=r"no column 'prompt' .*it has question, answer"):
        load_prompts(f)
    with pytest.raises(UserError, match=r"no column 'answer' \(prompts need prompt, answer"):
        validate(Dataset.from_list([{"prompt": "q"}]), "prompts", "x.jsonl", required=("answer",))
    ds = Dataset.from_list([{"q": 1}]).select([])
    with pytest.raises(UserError, match="x.jsonl has no rows"):
        validate(ds, "prompts", "x.jsonl")


def test_made_up_ids_are_stable_by_content(tmp_path):
    rows = [{"prompt": "a", "answer": 1}, {"prompt": "b", "answer": 2}, {"prompt": "c", "answer": 3, "id": "given"}]
    ids = load_prompts(write_jsonl(tmp_path / "x.jsonl", rows))["id"]
    assert ids[2] == "given" and ids[0].startswith("h-") and len(set(ids)) == 3
    # the same row gets the same id in another file, in another order, with its answer as a string
    again = load_prompts(write_jsonl(tmp_path / "y.jsonl", [{"prompt": "b", "answer": "2"}, {"prompt": "a", "answer": 1}]))
    assert again["id"] == [ids[1], ids[0]]


def test_extra_columns_carried_and_types_fixed():
    ds = Dataset.from_list([{"prompt": "write code", "domain": "code", "meta": {"k": [1, 2]},
                             "tests": json.dumps([{"input": "1\n", "output": 2}])}])
    out = validate(ds, "prompts")
    row = out[0]
    assert row["meta"] == {"k": [1, 2]} and row["tests"] == [{"input": "1\n", "output": "2"}]
    assert out.column_names == ["id", "prompt", "domain", "meta", "tests"]


def test_validate_returns_input_unchanged_when_nothing_to_fix(tmp_path):
    ds = load_table(r1_dir(tmp_path))
    assert validate(ds, "prompts") is ds


def test_sft_messages_checked(tmp_path):
    ok = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nx\n</think>\ny"}]}
    assert load_sft(write_jsonl(tmp_path / "ok.jsonl", [ok, ok]))["messages"][0][1]["role"] == "assistant"
    bad = {"messages": [{"role": "user", "content": "q"}]}
    with pytest.raises(UserError, match=r"row 1: column 'messages' ends with a 'user' turn"):
        load_sft(write_jsonl(tmp_path / "bad.jsonl", [ok, bad]))
    share = {"messages": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    with pytest.raises(UserError, match="ShareGPT"):
        load_sft(write_jsonl(tmp_path / "sg.jsonl", [share]))
    role = {"messages": [{"role": "human", "content": "q"}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(UserError, match=r"row 2: .*role 'human'"):
        load_sft(write_jsonl(tmp_path / "role.jsonl", [ok, ok, role]))
    with pytest.raises(UserError, match=r"row 0: column 'messages' is an empty list"):
        validate(Dataset.from_list([{"messages": []}, ok]), "sft")


def test_completions_and_safety(tmp_path):
    one_message = {"prompt": "p", "completion": {"role": "assistant", "content": "c"}}
    ds = load_completions(write_jsonl(tmp_path / "c.jsonl", [one_message]))
    assert ds[0]["completion"] == [{"role": "assistant", "content": "c"}]
    ds = load_safety(write_jsonl(tmp_path / "s.jsonl", [{"prompt": "p", "completion": "c", "label": True},
                                                        {"prompt": "p", "completion": "d", "label": False}]))
    assert ds["label"] == [1, 0] and ds.features["label"].dtype == "int64"
    with pytest.raises(UserError, match=r"row 1: column 'label' is 2"):
        load_safety(write_jsonl(tmp_path / "t.jsonl", [{"prompt": "p", "completion": "c", "label": 1},
                                                       {"prompt": "p", "completion": "d", "label": 2}]))
    with pytest.raises(UserError, match=r"row 0: column 'completion' is empty"):
        validate(Dataset.from_list([{"prompt": "p", "completion": None}, {"prompt": "q", "completion": "c"}]),
                 "completions")


# --- import ---------------------------------------------------------------------------------------------

GSM8K = [
    {"question": "Tom has 1,000 apples and buys 234 more. How many?", "answer": "1000+234=<<1000+234=1234>>1234\n#### 1,234"},
    {"question": "What is 9*8?", "answer": "9*8=72\n#### 72", "source_id": 17},
    {"question": "Go down 5 from 2.", "answer": "2-5=-3\n#### -3"},
]


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_gsm8k_answer_drops_thousands_separators(n):
    assert gsm8k_answer(f"some steps\n#### {n:,}") == str(n)


def test_gsm8k_answers():
    assert gsm8k_answer("x\n#### 1,234") == "1234"
    assert gsm8k_answer("#### 1,234,567.5") == "1234567.5"
    assert gsm8k_answer("#### 1,2") == "1,2"  # not a thousands separator: kept as written
    assert gsm8k_answer("no final answer") is None and gsm8k_answer("#### ") is None


def test_import_gsm8k(tmp_path, capsys):
    src = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    res = cli(capsys, "data", "import", src, "--to", tmp_path / "out", "--format", "gsm8k")
    assert res.returncode == 0, res.stderr
    ds = load_from_disk(str(tmp_path / "out"))
    assert ds["answer"] == ["1234", "72", "-3"]
    assert ds[0]["prompt"] == [{"role": "user", "content": GSM8K[0]["question"]}]
    assert set(ds["domain"]) == {"math"} and set(ds["language"]) == {"en"}
    assert ds["solution"] == [r["answer"] for r in GSM8K] and ds["source_id"] == [None, 17, None]
    assert "question" not in ds.column_names and all(i.startswith("h-") for i in ds["id"])
    m = read_manifest(tmp_path / "out")
    assert m["stage"] == "data-import" and m["counts"]["rows"] == 3 and m["counts"]["by_domain"] == {"math": 3}
    assert load_prompts(tmp_path / "out").to_list() == ds.to_list()


def test_import_gsm8k_bad_row_and_skip_bad(tmp_path, capsys):
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K[:1] + [{"question": "q", "answer": "no marker"}] + GSM8K[1:])
    res = cli(capsys, "data", "import", src, "--to", tmp_path / "o", "--format", "gsm8k")
    assert_user_error(res, "row 1", "####", "--skip-bad")
    assert not (tmp_path / "o").exists()
    res = cli(capsys, "data", "import", src, "--to", tmp_path / "o", "--format", "gsm8k", "--skip-bad")
    assert res.returncode == 0, res.stderr
    assert "1 rows without a final answer skipped" in res.stdout
    m = read_manifest(tmp_path / "o")
    assert m["counts"]["rows"] == 3 and m["counts"]["skipped"] == 1
    res = cli(capsys, "data", "import", src, "--to", tmp_path / "p", "--format", "math")
    assert_user_error(res, "no column 'problem'")


def test_import_math(tmp_path, capsys):
    rows = [
        {"problem": "Half of one?", "solution": r"It is $\boxed{\frac{1}{2}}$.", "level": "Level 1", "type": "Algebra"},
        {"problem": "Two boxes", "solution": r"First \boxed{3}, then finally \boxed{\sqrt{x^{2}}}", "level": "Level 5",
         "type": "Geometry"},
    ]
    src = tmp_path / "math.parquet"
    Dataset.from_list(rows).to_parquet(str(src))
    res = cli(capsys, "data", "import", src, "--to", tmp_path / "out", "--format", "math")
    assert res.returncode == 0, res.stderr
    ds = load_from_disk(str(tmp_path / "out"))
    assert ds["answer"] == [r"\frac{1}{2}", r"\sqrt{x^{2}}"]
    assert ds["level"] == ["Level 1", "Level 5"] and ds["type"] == ["Algebra", "Geometry"]
    assert ds["solution"] == [r["solution"] for r in rows] and ds[0]["prompt"][0]["content"] == "Half of one?"
    # MATH-500 style: the row's own answer column wins; a row with neither is an error naming it
    src2 = write_jsonl(tmp_path / "m500.jsonl", [{"problem": "p", "solution": "no box", "answer": "7"},
                                                 {"problem": "q", "solution": "none here"}])
    res = cli(capsys, "data", "import", src2, "--to", tmp_path / "o2", "--format", "math")
    assert_user_error(res, "row 1", "boxed")


def test_import_jsonl_validates_and_refuses_existing_output(tmp_path, capsys):
    src = write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                             {"role": "assistant", "content": "a"}], "w": 1}])
    assert cli(capsys, "data", "import", src, "--to", tmp_path / "o").returncode == 0
    assert read_manifest(tmp_path / "o")["config"]["kind"] == "sft"
    assert load_sft(tmp_path / "o")["w"] == [1]
    assert_user_error(cli(capsys, "data", "import", src, "--to", tmp_path / "o"), "--force")
    assert cli(capsys, "data", "import", src, "--to", tmp_path / "o", "--force").returncode == 0
    assert_user_error(cli(capsys, "data", "import", src, "--to", tmp_path / "p", "--format", "csv"), "--format")


# --- merge and inspect -------------------------------------------------------------------------------


def test_merge_dedupes_by_id_keeping_the_first(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "prompt": "x", "answer": "first"}, {"id": "2", "prompt": "y"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "1", "prompt": "x", "answer": "second"}, {"id": "3", "prompt": "z",
                                                                                          "extra": 5}])
    res = cli(capsys, "data", "merge", a, b, "--to", tmp_path / "m")
    assert res.returncode == 0, res.stderr
    ds = load_from_disk(str(tmp_path / "m"))
    assert ds["id"] == ["1", "2", "3"] and ds["answer"] == ["first", None, None] and ds["extra"] == [None, None, 5]
    counts = read_manifest(tmp_path / "m")["counts"]
    assert counts["rows"] == 3 and counts["duplicates"] == 1 and [i["rows"] for i in counts["inputs"]] == [2, 2]


def test_merging_shards_equals_the_whole(tmp_path, capsys):
    rows = [{"prompt": f"q{i}", "answer": i, "domain": "math"} for i in range(10)]
    whole = load_prompts(write_jsonl(tmp_path / "whole.jsonl", rows))
    with stage_output(tmp_path / "s0", kind="dataset", stage="t", config={}) as run:
        save_dataset(whole.select(range(0, 6)), run.partial)
    with stage_output(tmp_path / "s1", kind="dataset", stage="t", config={}) as run:
        save_dataset(whole.select(range(6, 10)), run.partial)
    assert cli(capsys, "data", "merge", tmp_path / "s0", tmp_path / "s1", "--to", tmp_path / "m").returncode == 0
    assert load_prompts(tmp_path / "m").to_list() == whole.to_list()
    # id-less datasets: different rows never collide, identical rows are one row
    c = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "q0", "answer": "0", "domain": "math"}, {"prompt": "new"}])
    assert cli(capsys, "data", "merge", tmp_path / "whole.jsonl", c, "--to", tmp_path / "m2").returncode == 0
    assert len(load_from_disk(str(tmp_path / "m2"))) == 11


def test_merge_refuses_different_kinds(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "x"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                         {"role": "assistant", "content": "a"}]}])
    assert_user_error(cli(capsys, "data", "merge", a, b, "--to", tmp_path / "m"), "different kinds")


def test_inspect(tmp_path, capsys):
    res = cli(capsys, "data", "inspect", r1_dir(tmp_path), "--rows", "1")
    assert res.returncode == 0, res.stderr
    assert "rows" in res.stdout and "math 2, general 1" in res.stdout and "en 2, zh 1" in res.stdout
    assert "1+1?" in res.stdout and "二加二" not in res.stdout  # one row shown
    outer = tmp_path / "world"  # a dir of datasets, as `r1 toy data OUT` writes: one line each
    with stage_output(outer, kind="dataset", stage="test", config={}) as run:
        save_dataset(Dataset.from_list(ROWS), run.partial / "rl")
        save_dataset(Dataset.from_list([{"messages": [{"role": "user", "content": "q"},
                                                      {"role": "assistant", "content": "a"}]}]), run.partial / "sft")
    res = cli(capsys, "data", "inspect", outer)
    assert res.returncode == 0, res.stderr
    assert "rl" in res.stdout and "prompts" in res.stdout and "sft" in res.stdout


# --- datasets as downloaded from the Hub --------------------------------------------------------------


def gsm8k_rows(n, start=0):
    return [{"question": f"What is {i}+1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"} for i in range(start, start + n)]


def hub_gsm8k(tmp_path):
    """GSM8K's layout: a config dir per config, a file per split (README beside them)."""
    root = tmp_path / "gsm8k"
    for config in ("main", "socratic"):
        (root / config).mkdir(parents=True)
        Dataset.from_list(gsm8k_rows(5)).to_parquet(str(root / config / "train-00000-of-00001.parquet"))
        Dataset.from_list(gsm8k_rows(3, 100)).to_parquet(str(root / config / "test-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nconfigs: [main, socratic]\n---\n")
    return root


def test_hub_splits_are_refused_without_split_and_read_with_it(tmp_path, capsys):
    root = hub_gsm8k(tmp_path)
    assert_user_error(cli(capsys, "data", "inspect", root / "main"), "holds several splits (test, train)", "--split test")
    assert_user_error(cli(capsys, "data", "import", root, "--to", tmp_path / "o", "--format", "gsm8k"),
                      "configs main (test, train); socratic (test, train)", f"{root / 'main'} --split test")
    assert_user_error(cli(capsys, "data", "inspect", root / "main", "--split", "dev"), "no such split", "test, train")
    res = cli(capsys, "data", "import", root / "main", "--split", "test", "--format", "gsm8k", "--to", tmp_path / "t")
    assert res.returncode == 0, res.stderr
    ds = load_from_disk(str(tmp_path / "t"))
    assert ds["answer"] == ["101", "102", "103"] and read_manifest(tmp_path / "t")["config"]["split"] == "test"
    # a stage reading the dir gets the same hint
    with pytest.raises(UserError, match="holds several splits"):
        load_prompts(root / "main")


def test_hub_shards_of_a_split_are_read_together_under_data(tmp_path, capsys):
    d = tmp_path / "sharded" / "data"
    d.mkdir(parents=True)
    Dataset.from_list(gsm8k_rows(2)).to_parquet(str(d / "train-00000-of-00002.parquet"))
    Dataset.from_list(gsm8k_rows(2, 2)).to_parquet(str(d / "train-00001-of-00002.parquet"))
    write_jsonl(d / "test.jsonl", gsm8k_rows(1, 50))
    assert load_table(tmp_path / "sharded", split="train")["question"] == [f"What is {i}+1?" for i in range(4)]
    assert len(load_table(tmp_path / "sharded", split="test")) == 1
    (d / "train-00001-of-00002.parquet").unlink()  # a download cut short
    with pytest.raises(UserError, match="1 of the 2 shards of split train"):
        load_table(tmp_path / "sharded", split="train")
    # one split only (MATH-500's test.jsonl beside its README): read without --split
    m = tmp_path / "math500"
    m.mkdir()
    write_jsonl(m / "test.jsonl", [{"problem": "p", "solution": r"\boxed{1}", "answer": "1"}])
    (m / "README.md").write_text("# MATH-500")
    assert len(load_table(m)) == 1
    # a saved DatasetDict: --split picks its dir
    from datasets import DatasetDict

    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(str(tmp_path / "dd"))
    assert load_table(tmp_path / "dd", split="test")["id"] == ["a"]


def test_a_dir_of_other_files_is_still_one_dataset(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    write_jsonl(d / "part_a.jsonl", ROWS[:1])
    write_jsonl(d / "part_b.jsonl", ROWS[1:])
    assert load_table(d)["id"] == ["a", "b", "c"]


# --- column mapping, chat data, the hints --------------------------------------------------------------

CHATS = [
    {"messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "<think>\n2+2=4\n</think>\n4"}], "source": "s1"},
    {"messages": [{"role": "user", "content": "Name a color"}, {"role": "assistant", "content": "Red"}], "source": "s2"},
]


def test_import_with_map(tmp_path, capsys):
    src = write_jsonl(tmp_path / "qa.jsonl", [{"Question": "What is 2+2?", "Answer": 4, "Topic": "math"}])
    res = cli(capsys, "data", "import", src, "--map", "prompt=Question", "--map", "answer=Answer", "--to", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    ds = load_prompts(tmp_path / "o")
    assert ds[0]["prompt"] == "What is 2+2?" and ds[0]["answer"] == "4" and ds[0]["Topic"] == "math"
    assert read_manifest(tmp_path / "o")["config"]["map"] == ["prompt=Question", "answer=Answer"]
    assert_user_error(cli(capsys, "data", "import", src, "--map", "prompt=Nope", "--to", tmp_path / "p"),
                      "no column 'Nope'", "Question, Answer")
    assert_user_error(cli(capsys, "data", "import", src, "--map", "prompt", "--to", tmp_path / "p"), "CANONICAL=SOURCE")


def test_import_messages_as_prompts_and_as_sft(tmp_path, capsys):
    src = write_jsonl(tmp_path / "chat.jsonl", CHATS)
    assert cli(capsys, "data", "import", src, "--format", "messages", "--to", tmp_path / "p").returncode == 0
    ds = load_prompts(tmp_path / "p")
    # the last user turn is the prompt, the turns before it are kept, the reply after it is the reference
    assert [m["content"] for m in ds[0]["prompt"]] == ["Be nice.", "Hi", "Hello!", "What is 2+2?"]
    assert ds["answer"] == ["<think>\n2+2=4\n</think>\n4", "Red"] and ds["source"] == ["s1", "s2"]
    res = cli(capsys, "data", "import", src, "--format", "messages", "--kind", "sft", "--to", tmp_path / "s")
    assert res.returncode == 0, res.stderr
    assert "1 of 2 end in an R1-format reply" in res.stdout and "r1 coldstart needs every row so" in res.stdout
    assert read_manifest(tmp_path / "s")["counts"]["r1_format"] == 1
    assert load_sft(tmp_path / "s")["messages"][1][-1] == {"role": "assistant", "content": "Red"}
    # ShareGPT's from/value turns
    sg = write_jsonl(tmp_path / "sg.jsonl", [{"conversations": [{"from": "human", "value": "Hi"},
                                                                {"from": "gpt", "value": "Hello"}]}])
    assert cli(capsys, "data", "import", sg, "--format", "messages", "--kind", "sft", "--to", tmp_path / "g").returncode == 0
    assert load_sft(tmp_path / "g")["messages"][0] == [{"role": "user", "content": "Hi"},
                                                       {"role": "assistant", "content": "Hello"}]
    ends_with_user = write_jsonl(tmp_path / "u.jsonl", [{"messages": CHATS[1]["messages"][:1]}])
    assert_user_error(cli(capsys, "data", "import", ends_with_user, "--format", "messages", "--kind", "sft",
                          "--to", tmp_path / "u"), "does not end with an assistant reply", "--skip-bad")


@pytest.mark.parametrize("rows, hint", [
    ([{"question": "q", "answer": "#### 1"}], "--format gsm8k"),
    ([{"problem": "p", "solution": r"\boxed{1}"}], "--format math"),
    ([{"conversations": [{"from": "human", "value": "hi"}]}], "--format messages"),
    ([{"Question": "q", "Answer": "1"}], "--map prompt=Question --map answer=Answer"),
    ([{"instruction": "q", "output": "1"}], "--map prompt=instruction --map answer=output"),
])
def test_every_convert_hint_names_the_format_that_fits(tmp_path, capsys, rows, hint):
    src = write_jsonl(tmp_path / "x.jsonl", rows)
    with pytest.raises(UserError, match=re.escape(f"r1 data import {src} {hint} --to DIR")):
        load_prompts(src)
    assert_user_error(cli(capsys, "data", "import", src, "--to", tmp_path / "o"), f"import it with {hint}")
    other = "math" if hint == "--format gsm8k" else "gsm8k"  # the wrong --format: the hint is the right one
    assert_user_error(cli(capsys, "data", "import", src, "--format", other, "--to", tmp_path / "o"),
                      f"import it with {hint}")


def test_import_to_a_file_name_writes_that_file(tmp_path, capsys):
    src = write_jsonl(tmp_path / "g.jsonl", GSM8K)
    for name in ("out.jsonl", "out.parquet"):
        res = cli(capsys, "data", "import", src, "--format", "gsm8k", "--to", tmp_path / name)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / name).is_file() and load_prompts(tmp_path / name)["answer"] == ["1234", "72", "-3"]
    assert_user_error(cli(capsys, "data", "import", src, "--format", "gsm8k", "--to", tmp_path / "out.jsonl"), "--force")


def test_data_is_printed_verbatim_never_as_markup(tmp_path, capsys, monkeypatch):
    """MATH-500's \\[ and [asy] ... [/asy], a path with brackets: rich must not read any of it as markup."""
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping: each cell on one line
    cells = {"prompt": r"Compute \[x^2\] [asy]draw((0,0)--(1,1));[/asy] [bold]b[/bold] \\ [/] :smile:",
             "answer": r"\boxed{[1,2]} \[/asy]", "[col]": "[/asy]", "domain": "math", "language": "[en]"}
    d = tmp_path / "exp[v2]"
    d.mkdir()
    src = write_jsonl(d / "d.jsonl", [cells])
    res = cli(capsys, "data", "inspect", src, "--rows", "1")
    assert res.returncode == 0, res.stderr
    for text in (*cells.values(), "[col]", "[en] 1"):
        assert text in res.stdout, text
    assert str(src) in re.sub(r"\s*\n", "", res.stdout)  # the title wraps at the table's width
    runs = tmp_path / "runs[1]"
    res = cli(capsys, "data", "import", src, "--to", runs / "out")
    assert res.returncode == 0, res.stderr
    assert f"from {src} into {runs / 'out'}" in res.stdout and f"wrote {runs / 'out'} (" in res.stdout
    res = cli(capsys, "data", "inspect", runs)  # a dir holding a dataset dir: the hint's path is whole
    assert res.returncode == 0 and f"r1 data inspect {runs / 'out'}" in res.stdout, res.stdout


def test_a_row_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    from r1cli.data.schema import MAX_ROW_CHARS

    big = "y" * (MAX_ROW_CHARS + 1)
    src = write_jsonl(tmp_path / "big.jsonl", ROWS[:1] + [{"id": "big", "prompt": [{"role": "user", "content": big}]}])
    with pytest.raises(UserError, match=r"row 1 \(id big\) has 1,000,0\d\d characters .*R1_MAX_ROW_CHARS"):
        load_prompts(src)
    # text anywhere in the row counts: a long CoT in an SFT conversation too
    sft = write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                             {"role": "assistant", "content": big}]}])
    with pytest.raises(UserError, match="row 0 .* characters"):
        load_sft(sft)
    monkeypatch.setenv("R1_MAX_ROW_CHARS", str(2 * MAX_ROW_CHARS))
    assert len(load_prompts(src)) == 2
    monkeypatch.setenv("R1_MAX_ROW_CHARS", "lots")
    with pytest.raises(UserError, match="R1_MAX_ROW_CHARS='lots'"):
        load_prompts(src)
