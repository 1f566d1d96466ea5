"""The directory contract: OUT.partial then atomic rename, manifests, refusals."""

import json

import pytest

from r1cli.artifacts import MANIFEST, check_input, check_output, fingerprint, partial_path, read_manifest, stage_output
from r1cli.errors import UserError


def make_input(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "data.txt").write_text("hello")
    return d


def test_success_renames_partial_and_writes_manifest(tmp_path):
    src = make_input(tmp_path)
    out = tmp_path / "out"
    with stage_output(out, kind="dataset", stage="test", config={"a": 1}, inputs=[src]) as run:
        assert run.partial == partial_path(out) and run.partial.is_dir()
        assert not out.exists()
        assert read_manifest(run.partial)["status"] == "running"
        run.path("x.txt").write_text("x")
        run.log_metrics({"step": 1, "loss": 2.0})
        run.counts["rows"] = 1
        run.metrics["loss"] = 2.0
    assert out.is_dir() and not partial_path(out).exists()
    m = json.loads((out / MANIFEST).read_text())
    assert m["status"] == "finished" and m["kind"] == "dataset" and m["stage"] == "test"
    assert m["config"] == {"a": 1} and m["counts"] == {"rows": 1} and m["metrics"] == {"loss": 2.0}
    assert m["inputs"][0]["path"] == str(src) and m["inputs"][0]["fingerprint"].startswith("sha256:")
    assert {"r1cli", "torch", "transformers", "trl", "datasets"} <= set(m["versions"])
    assert m["fingerprint"] == fingerprint(out)
    assert (out / "metrics.jsonl").read_text().strip() == '{"step": 1, "loss": 2.0}'


def test_crash_leaves_partial_not_out(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with stage_output(out, kind="dataset", stage="t", config={}) as run:
            run.path("half").write_text("...")
            raise RuntimeError("boom")
    assert not out.exists() and partial_path(out).is_dir()
    # a leftover partial needs --resume or --force
    with pytest.raises(UserError, match="--resume"):
        check_output(out, resume=False)
    with stage_output(out, kind="dataset", stage="t", config={}, resume=True) as run:
        assert run.resumed and run.path("half").exists()
    assert out.exists()


def test_user_error_removes_fresh_partial(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError):
        with stage_output(out, kind="dataset", stage="t", config={}):
            raise UserError("bad column")
    assert not out.exists() and not partial_path(out).exists()


def test_existing_out_refused_unless_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("old")
    with pytest.raises(UserError, match="exists.*--force"):
        with stage_output(out, kind="dataset", stage="t", config={}):
            pass
    assert (out / "old").exists()
    with stage_output(out, kind="dataset", stage="t", config={}, force=True) as run:
        run.path("new").write_text("new")
    assert (out / "new").exists() and not (out / "old").exists()


def test_inputs_checked(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        check_input(tmp_path / "missing", "--data")
    p = tmp_path / "x.partial"
    p.mkdir()
    with pytest.raises(UserError, match="unfinished"):
        check_input(p, "--model")
    d = tmp_path / "d"
    d.mkdir()
    (d / MANIFEST).write_text(json.dumps({"status": "running"}))
    with pytest.raises(UserError, match="unfinished"):
        check_input(d)
    with pytest.raises(UserError, match="ends in .partial"):
        check_output(tmp_path / "o.partial")


def test_fingerprint_tracks_content(tmp_path):
    d = make_input(tmp_path)
    a = fingerprint(d)
    (d / "data.txt").write_text("hellp")
    assert fingerprint(d) != a


def test_leftover_partial_message_offers_resume_only_where_it_exists(tmp_path):
    out = tmp_path / "out"
    partial_path(out).mkdir()
    with pytest.raises(UserError, match=r"pass --resume to continue it, or --force to start over"):
        check_output(out, resume=False)  # a command with --resume (grpo, sft, reject-sample...)
    with pytest.raises(UserError) as e:
        check_output(out)  # eval, score, data, report: no --resume
    assert "--force to start over" in str(e.value) and "--resume" not in str(e.value)
    assert check_output(out, resume=True) == out and check_output(out, force=True) == out


def test_a_finished_dirs_fingerprint_can_be_recomputed_from_its_files(tmp_path):
    from r1cli.artifacts import MANIFEST, fingerprint_files, write_json_atomic

    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("a")
    before = fingerprint_files(d)
    write_json_atomic(d / MANIFEST, {"fingerprint": before})
    assert fingerprint_files(d) == before and sorted(p.name for p in d.iterdir()) == ["a.txt", MANIFEST]
    (d / "a.txt").write_text("b")
    assert fingerprint_files(d) != before
