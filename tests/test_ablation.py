"""The stage-3b ablation summary of `make demo` (python -m r1cli.toy.ablation), on made-up eval and score dirs."""

from __future__ import annotations

import json

from datasets import Dataset

from r1cli.toy import ablation

# (completion, reference) per sample; the reply after the CoT counts, up to the rule verifier's normalization
SAMPLES = {
    "sft": [("<think>\nThe user wants a color.\n</think>\nRed.", "red"),       # right (case, punctuation)
            ("<think>\nFirst, 1+1=2.\n</think>\nThe answer is \\boxed{2}.", "Blue."),  # a CoT, wrong reply
            ("Blue.", "Blue."),                                                  # no CoT, right reply
            ("<think>\nHe wants 猫.\n</think>\n“猫”的英文是“cat”。", '"猫"的英文是"Cat"')],  # right
    "sft_nogeneral": [("<think>\nFirst, 1+1=2.\n</think>\n2", "Red."), ("<think>\nx\n</think>\n3", "Blue."),
                      ("<think>\ny\n</think>\n4", "Green."), ("<think>\nz\n</think>\n5", "猫")],
}
HARMLESS = {"sft": [1.0, -0.5, 2.0, 0.3], "sft_nogeneral": [1.0, 1.0, 1.0, 1.0]}


def make(abl, name):
    comps, refs = zip(*SAMPLES[name])
    Dataset.from_dict({"completion": list(comps), "answer": list(refs)}).save_to_disk(str(abl / f"general_{name}"))
    fmt = sum(c.startswith("<think>") for c in comps) / len(comps)
    (abl / f"general_{name}" / "r1.json").write_text(json.dumps({"metrics": {"format_rate": fmt, "n_prompts": 2, "n_samples": 4}}))
    Dataset.from_dict({"reward_harmlessness": HARMLESS[name]}).save_to_disk(str(abl / f"rm_{name}"))
    (abl / f"rm_{name}" / "r1.json").write_text(json.dumps({"metrics": {"helpfulness_mean": 0.25}}))


def test_summary_counts_right_replies_cot_share_and_safe_rate(tmp_path, capsys):
    for name in ablation.MODELS:
        make(tmp_path, name)
    with_general, without = ablation.rows(tmp_path)
    assert with_general["right_reply"] == 0.75 and without["right_reply"] == 0.0
    assert with_general["cot_share"] == 0.75 and without["cot_share"] == 1.0
    assert with_general["safe_rate"] == 0.75 and without["safe_rate"] == 1.0
    assert ablation.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "right reply" in out and "75.0%" in out and "(2 held-out general prompts x 2)" in out


def test_missing_run_is_one_line_exit_2(tmp_path, capsys):
    assert ablation.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make demo" in err[0]


def test_difference_pairs_the_prompts_and_check_exits_1_unless_its_whole_ci_is_above_0(tmp_path, capsys):
    for name in ablation.MODELS:
        make(tmp_path, name)
    diff = ablation.difference(tmp_path)  # rows without ids: each row its own prompt
    assert diff["value"] == 0.75 and diff["n_prompts"] == 4 and diff["ci"][0] > 0 and diff["holds"]
    assert ablation.main([str(tmp_path), "--check"]) == 0
    assert "+75.0 points" in capsys.readouterr().out
    # swapped: without rs_general right more often, so the comparison fails and --check exits 1
    for name in ablation.MODELS:
        (tmp_path / f"general_{name}").rename(tmp_path / f"was_{name}")
    (tmp_path / "was_sft").rename(tmp_path / "general_sft_nogeneral")
    (tmp_path / "was_sft_nogeneral").rename(tmp_path / "general_sft")
    assert ablation.main([str(tmp_path), "--check"]) == 1
    assert "with rs_general > without, fails: right_reply sft 0.0 - sft_nogeneral 75.0 = -75.0 points" in capsys.readouterr().out
    # the same replies on both sides, two samples of each of two prompts: no difference, so not clear
    same = tmp_path / "same"
    for name in ablation.MODELS:
        Dataset.from_dict({"id": ["a", "a", "b", "b"], "completion": ["Red.", "Blue.", "Red.", "x"],
                           "answer": ["red"] * 4}).save_to_disk(str(same / f"general_{name}"))
    diff = ablation.difference(same)
    assert diff["value"] == 0 and diff["n_prompts"] == 2 and not diff["holds"]
