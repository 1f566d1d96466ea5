"""`r1 score`: JSONL and dataset-dir inputs, reward columns with nulls, the weighted sum, the
manifest, and bad inputs (unknown reward, missing column, bad weights) as exit 2 with one line."""

import json
from types import SimpleNamespace

import datasets
import pytest

from r1cli.errors import UserError
from r1cli.options import parse_rewards
from r1cli.stages.score import batches

ROWS = [
    {"prompt": "What is 6*7?", "completion": "<think>\nFirst, 6*7=42.\n</think>\nThe answer is \\boxed{42}.",
     "answer": "42", "language": "en", "domain": "math", "source": "a"},
    {"prompt": "6乘7是多少？", "completion": "<think>\n首先 6*7=42\n</think>\n答案 \\boxed{42}", "answer": "42",
     "language": "zh", "domain": "math", "source": "b"},
    {"prompt": "What is 1/2 + 0?", "completion": "<think>\nhalf of one\n</think>\n\\boxed{0.5}", "answer": "\\frac12",
     "language": "en", "domain": "math", "source": "c"},
    {"prompt": "Say hi", "completion": "hi there", "answer": "", "language": "en", "domain": "general", "source": "d"},
    {"prompt": "What is 2+2?", "completion": "<think>\nFirst we add\n</think>\n\\boxed{5}", "answer": "4", "language": "en",
     "domain": None, "source": "e"},
]


def cli(capsys, *args):
    from r1cli.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_jsonl(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    res = cli(capsys, "score", src, "--rewards", "accuracy,format,language", "--weights", "1,1,0.5", "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "reward (weighted sum)" in res.stdout
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert ds["source"] == ["a", "b", "c", "d", "e"]  # rows and unknown columns carried through, in order
    assert ds["reward_accuracy"] == [1.0, 1.0, 1.0, None, 0.0]  # general row: null; row without domain: scored
    assert ds["reward_format"] == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert ds["reward_language"] == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert ds["reward"] == [2.5, 2.5, 2.5, 0.0, 1.5]  # weighted sum over the rewards that apply
    m = json.loads((tmp_path / "out" / "r1.json").read_text())
    assert m["kind"] == "dataset" and m["stage"] == "score" and m["status"] == "finished"
    assert m["counts"]["rows"] == 5 and m["counts"]["applicable"]["accuracy"] == 4 and m["counts"]["timeouts"] == 0
    assert m["metrics"]["accuracy_mean"] == 0.75 and m["metrics"]["reward_mean"] == pytest.approx(9 / 5)
    assert m["config"]["rewards"] == {"accuracy": 1.0, "format": 1.0, "language": 0.5}


def test_score_dataset_dir_with_message_completions(tmp_path, capsys):
    from r1cli.data import save_dataset

    rows = [dict(r, completion=[{"role": "assistant", "content": r["completion"]}]) for r in ROWS[:3]]
    save_dataset(datasets.Dataset.from_list(rows), tmp_path / "in")
    res = cli(capsys, "score", tmp_path / "in", "--rewards", "accuracy,repetition,overlong", "--out", tmp_path / "out",
              "--set", "reward_options={max_completion_len: 40, soft_punish_cache: 10}")
    assert res.returncode == 0, res.stderr
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert ds["reward_accuracy"] == [1.0, 1.0, 1.0]
    lens = [len(r["completion"]) for r in ROWS[:3]]  # no token ids: characters
    assert ds["reward_overlong"] == [0.0 if n <= 30 else max(-1.0, (30 - n) / 10) for n in lens]
    # a scored dir can be scored again: its reward columns are replaced, not duplicated
    res = cli(capsys, "score", tmp_path / "out", "--rewards", "accuracy", "--out", tmp_path / "again")
    assert res.returncode == 0, res.stderr
    assert datasets.load_from_disk(str(tmp_path / "again"))["reward"] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("args,words", [
    (["--rewards", "acuracy"], ["unknown reward 'acuracy'", "accuracy"]),
    (["--rewards", "accuracy,format", "--weights", "1"], ["--weights has 1 values for 2 rewards"]),
    (["--rewards", "format", "--weights", "x"], ["not a number"]),
    (["--weights", "1"], ["--weights needs --rewards"]),
    (["--rewards", "accuracy,accuracy"], ["twice"]),
    (["--rewards", "overlong"], ["max_completion_len"]),
    (["--rewards", "format", "--set", "reward_options.tiemout=3"], ["unknown reward option 'tiemout'", "timeout"]),
    (["--rewards", "mypkg_nope.mod:fn"], ["cannot import module"]),
    (["--rewards", "format", "--workers", "0"], ["--workers"]),
])
def test_bad_arguments_exit_2(tmp_path, capsys, args, words):
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    res = cli(capsys, "score", src, "--out", tmp_path / "out", *args)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    for w in words:
        assert w in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_missing_column_names_reward_and_column(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [{k: v for k, v in r.items() if k != "answer"} for r in ROWS])
    res = cli(capsys, "score", src, "--rewards", "format,accuracy", "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "reward 'accuracy' needs column 'answer'" in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    res = cli(capsys, "score", tmp_path / "missing.jsonl", "--out", tmp_path / "out")
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_existing_output_needs_force(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    assert cli(capsys, "score", src, "--rewards", "format", "--out", tmp_path / "out").returncode == 0
    res = cli(capsys, "score", src, "--rewards", "format", "--out", tmp_path / "out")
    assert res.returncode == 2 and "--force" in res.stderr
    assert cli(capsys, "score", src, "--rewards", "format", "--out", tmp_path / "out", "--force").returncode == 0


def test_batches_keep_a_prompts_completions_together():
    keys = ["b", "a", "b", "c", "a", "b", "a", "c"]
    out = batches(keys, 2)
    assert sorted(i for b in out for i in b) == list(range(8))
    for b in out:
        for key in {keys[i] for i in b}:
            assert all(i in b for i, k in enumerate(keys) if k == key)


def test_parse_rewards():
    assert parse_rewards(None, None) is None
    assert parse_rewards("accuracy, format", "1, 0.5") == {"accuracy": 1.0, "format": 0.5}
    assert parse_rewards("language", None) == {"language": 1.0}
    with pytest.raises(UserError):
        parse_rewards(" , ", None)
