"""Experiment trackers through `trl.report_to`: TensorBoard event files in OUT/tensorboard/ hold the
metrics an SFT and a GRPO run logged (read back with TensorBoard's EventAccumulator), and a tracker
whose package is missing is refused before anything loads.

    pytest tests/test_trackers.py
"""

from __future__ import annotations

import importlib.util
import json
import re

from r1cli.cli import main

SFT = ["--set", "trl.max_steps=3", "--set", "trl.per_device_train_batch_size=4", "--set", "trl.logging_steps=1",
       "--set", "trl.max_length=256"]
GRPO = ["--set", "trl.max_steps=2", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
        "--set", "trl.max_completion_length=32", "--set", "trl.logging_steps=1", "--set", "trl.save_strategy=\"no\""]


def scalars(out) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def logged(out, key: str) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def check_events(out, key: str) -> None:
    """The event files moved with OUT.partial/ -> OUT/, and hold every value metrics.jsonl holds for `key`."""
    assert not (out / "trainer").exists() and list((out / "tensorboard").glob("events.out.tfevents.*"))
    tb = scalars(out)
    assert f"train/{key}" in tb, sorted(tb)
    ours = logged(out, key)
    assert len(ours) >= 2
    assert [s for s, _ in tb[f"train/{key}"]] == [s for s, _ in ours]
    for (_, a), (_, b) in zip(tb[f"train/{key}"], ours):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(b))


def test_tensorboard_from_a_recipe_sft(toy_base, toy_data, tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("trl:\n  report_to: [tensorboard]\n")
    out = tmp_path / "sft"
    main(["coldstart", "--model", str(toy_base), "--data", str(toy_data / "coldstart"), "--out", str(out),
          "--recipe", str(recipe), *SFT])
    check_events(out, "loss")
    assert json.loads((out / "r1.json").read_text())["config"]["trl_args"]["report_to"] == ["tensorboard"]


def test_tensorboard_from_set_grpo(toy_base, toy_data, tmp_path):
    out = tmp_path / "grpo"
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out), *GRPO,
          "--set", "trl.report_to=[tensorboard]"])
    check_events(out, "reward")
    check_events(out, "completions/mean_length")


def test_missing_or_unknown_tracker_is_refused_before_loading(run_r1, toy_base, toy_data, tmp_path):
    missing = next(n for n in ("wandb", "trackio", "mlflow", "neptune", "clearml")
                   if importlib.util.find_spec(n) is None)
    for tracker, msg in ((missing, rf"trl.report_to names '{missing}', whose package is not installed"),
                         ("tensorbored", r"trl.report_to names 'tensorbored', which transformers does not know")):
        out = tmp_path / "o"
        r = run_r1("coldstart", "--model", toy_base, "--data", toy_data / "coldstart", "--out", out,
                   "--set", f"trl.report_to=[{tracker}]")
        assert r.returncode == 2, r.stderr[-2000:]
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in r.stderr and re.search(msg, err[0]), r.stderr
        assert not out.exists() and not (tmp_path / "o.partial").exists()
