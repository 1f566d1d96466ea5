"""`r1 coldstart` / `r1 sft` on the toy world: a real (short) TRL run, the R1-format checks, mixing."""

import json

import pytest
from datasets import Dataset, load_from_disk

from r1cli.cli import main
from r1cli.errors import UserError
from r1cli.stages.sft import check_rows, check_template, mix

SHORT = ["--set", "trl.max_steps=3", "--set", "trl.per_device_train_batch_size=4", "--set", "trl.logging_steps=1",
         "--set", "trl.max_length=256"]


def test_coldstart_trains_and_writes_a_checkpoint(toy_base, toy_data, tmp_path):
    out = tmp_path / "cs"
    main(["coldstart", "--model", str(toy_base), "--data", str(toy_data / "coldstart"), "--out", str(out), *SHORT])
    m = json.loads((out / "r1.json").read_text())
    assert m["kind"] == "checkpoint" and m["stage"] == "coldstart" and m["status"] == "finished"
    assert m["counts"]["steps"] == 3 and m["counts"]["tokens_seen"] > 0 and m["metrics"]["train_loss"] > 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok("<think>\n1 2\n</think>\n")["input_ids"]) == "<think>\n1 2\n</think>\n"
    assert not (out / "trainer").exists()  # TRL's intermediate checkpoints are not part of OUT


def test_sft_mixes_several_datasets_and_plain_replies(toy_base, toy_data, tmp_path):
    plain = Dataset.from_list([{"id": f"p{i}", "messages": [{"role": "user", "content": "Hi"},
                                                           {"role": "assistant", "content": "Hello!"}],
                                "domain": "general", "language": "en"} for i in range(8)])
    plain.save_to_disk(str(tmp_path / "plain"))
    out = tmp_path / "sft"
    main(["sft", "--model", str(toy_base), "--data", str(toy_data / "coldstart"), "--data", str(tmp_path / "plain"),
          "--out", str(out), *SHORT, "--set", "data_weights=[0.1, 2]"])
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["datasets"] == [len(load_from_disk(str(toy_data / "coldstart"))), 8]
    assert m["counts"]["rows"] == round(0.1 * m["counts"]["datasets"][0]) + 16


def rows(*replies):
    return Dataset.from_list([{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": r}]}
                              for r in replies])


def test_r1_format_is_required_for_coldstart_only():
    good = "<think>\n1+1=2.\n</think>\nSo \\boxed{2}."
    check_rows(rows(good), "d", require_reasoning=True)
    with pytest.raises(UserError, match="1 of 2 rows .* not in the R1 format .*first: row 1"):
        check_rows(rows(good, "just 2"), "d", require_reasoning=True)
    check_rows(rows(good, "just 2"), "d", require_reasoning=False)  # stage 3 keeps no-CoT replies
    with pytest.raises(UserError, match="not in the R1 format"):
        check_rows(rows("<think>unclosed 2"), "d", require_reasoning=False)
    with pytest.raises(UserError, match="no assistant turn"):
        check_rows(Dataset.from_list([{"messages": [{"role": "user", "content": "q"}]}]), "d", True)


def test_template_must_exist_and_keep_the_cot(toy_base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(toy_base)
    check_template(tok, toy_base)
    tok.chat_template = "{% for m in messages %}{{ m['content'].split('</think>')[-1] }}{% endfor %}"
    with pytest.raises(UserError, match="strips the <think> content"):
        check_template(tok, toy_base)
    tok.chat_template = None
    with pytest.raises(UserError, match="no chat template"):
        check_template(tok, toy_base)


def test_mix_weights_checked():
    ds = rows("a", "b")
    with pytest.raises(UserError, match="one per --data"):
        mix([ds], [1.0, 2.0], 0)
    assert len(mix([ds, ds], [1.0, 0.5], 0)) == 3


@pytest.mark.parametrize("extra,msg", [
    (["--set", "trl.per_device_train_batch_size=100000"], "global batch"),
    (["--set", "trl.max_length=5"], "all .* sequences are longer than max_length=5"),
    (["--set", "trl.learnig_rate=1"], "learning_rate"),
])
def test_bad_settings_exit_2(run_r1, toy_base, toy_data, tmp_path, extra, msg):
    out = tmp_path / "o"
    r = run_r1("coldstart", "--model", toy_base, "--data", toy_data / "coldstart", "--out", out, *extra)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr
    import re

    assert re.search(msg, err[0]), err[0]
    assert not out.exists() and not (tmp_path / "o.partial").exists()


def test_non_r1_data_refused_by_coldstart(run_r1, toy_base, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "2"}]}) + "\n")
    r = run_r1("coldstart", "--model", toy_base, "--data", p, "--out", tmp_path / "o")
    assert r.returncode == 2 and "R1 format" in r.stderr and "r1 sft" in r.stderr


def test_a_log_file_gets_a_line_per_step_and_where_the_result_went(toy_base, toy_data, tmp_path):
    """stdout to a file, as on a cluster: no progress bar there, so one plain line per logging step."""
    import os
    import subprocess
    import sys

    out, log = tmp_path / "cs", tmp_path / "log.txt"
    with open(log, "w") as fh:
        r = subprocess.run([sys.executable, "-m", "r1cli", "coldstart", "--model", str(toy_base), "--data",
                            str(toy_data / "coldstart"), "--out", str(out), *SHORT], stdout=fh, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = log.read_text().splitlines()
    steps = [x for x in lines if x.startswith("r1 coldstart step ")]
    assert [x.split()[3] for x in steps] == ["1/3", "2/3", "3/3"]
    for x in steps:
        for label in ("loss", "accuracy", "tokens/s", "elapsed", "ETA"):
            assert f"  {label} " in x, x
    summary = next(x for x in lines if x.startswith("r1 coldstart trained 3 steps"))
    assert float(summary.split("tokens/s ")[1].split()[0]) > 0
    assert lines[-1].startswith(f"wrote {out} (coldstart, ")
    # the run's summary record in metrics.jsonl has the whole run's rate, not the last interval's 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert "train_runtime" in records[-1] and records[-1]["tokens_per_s"] > 0
