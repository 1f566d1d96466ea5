"""Algorithm presets (`algorithm: grpo|dr_grpo|dapo|gspo|cispo`) and DAPO's dynamic sampling.

- each preset is a valid TRL GRPOConfig, runs a step on the toy base, and its values are the
  effective TRL arguments in the manifest; a `trl:` key wins over the preset and says so;
- dynamic sampling's refill logic on a stand-in trainer (no model), and one real toy run with its
  telemetry.
"""

from __future__ import annotations

import json
import typing
from collections import defaultdict
from types import SimpleNamespace

import pytest

from r1cli.cli import main
from r1cli.config import GRPOStageConfig
from r1cli.training import algorithms
from r1cli.training.args import manifest_config
from r1cli.training.dynamic_sampling import concat_rows, generate_and_score, take_rows, zero_std_groups
from r1cli.errors import UserError
from r1cli.recipe import resolve, resolve_stage

SHORT = ["--set", "trl.max_steps=1", "--set", "trl.per_device_train_batch_size=8", "--set", "trl.num_generations=4",
         "--set", "trl.max_completion_length=24", "--set", "trl.logging_steps=1", "--set", "trl.save_strategy=\"no\"",
         "--set", "samples_every=0"]
# what sets each preset apart from the default grpo preset, as the manifest's trl_args must show it
DISTINCT = {
    "grpo": {"loss_type": "grpo", "beta": 0.001, "epsilon": 10.0},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none", "beta": 0.0},
    "dapo": {"loss_type": "dapo", "epsilon_high": 0.28, "mask_truncated_completions": True, "beta": 0.0},
    "gspo": {"importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4, "loss_type": "grpo"},
    "cispo": {"loss_type": "cispo", "epsilon_high": 5.0, "beta": 0.0},
}


def test_presets_are_the_config_choices_and_valid_trl_configs(tmp_path):
    field = next(f for f in GRPOStageConfig.__dataclass_fields__.values() if f.name == "algorithm")
    assert set(typing.get_args(typing.get_type_hints(GRPOStageConfig)["algorithm"])) == set(algorithms.PRESETS)
    assert field.default == "grpo"
    assert set(DISTINCT) == set(algorithms.PRESETS)
    for name, values in algorithms.PRESETS.items():
        assert set(values) == set(algorithms.KEYS), name
        args = resolve_stage(GRPOStageConfig, sets=[f"algorithm={name}"], out=tmp_path / name, trainer=True).trl
        for k, v in values.items():
            assert getattr(args, k) == v, (name, k)


def test_trl_key_wins_over_the_preset_and_the_table_says_so(tmp_path):
    res = resolve_stage(GRPOStageConfig, sets=["algorithm=dapo", "trl.epsilon_high=0.3", "trl.beta=0.0"],
                        out=tmp_path / "o", trainer=True)
    args = res.trl
    assert args.epsilon_high == 0.3 and args.loss_type == "dapo"
    rows = {k: src for k, _, src in res.trl_rows}
    assert rows["trl.epsilon_high"] == "--set, trl: 0.3 overrides preset dapo's 0.28"
    assert rows["trl.loss_type"] == "preset dapo"
    assert rows["trl.beta"] == "--set"  # the same value as the preset: no clash
    rec = manifest_config(res)["algorithm_preset"]
    assert rec["name"] == "dapo" and rec["values"]["epsilon_high"] == 0.28
    assert rec["overridden"] == {"epsilon_high": {"effective": 0.3, "preset": 0.28}}


@pytest.mark.parametrize("name", list(algorithms.PRESETS))
def test_each_preset_trains_on_the_toy(toy_base, toy_data, tmp_path, name):
    out = tmp_path / name
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out),
          "--set", f"algorithm={name}", *SHORT])
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["steps"] == 1 and m["config"]["algorithm"] == name
    for k, v in DISTINCT[name].items():
        assert m["config"]["trl_args"][k] == v, (name, k)
    assert m["config"]["algorithm_preset"] == {"name": name, "values": algorithms.PRESETS[name], "overridden": {}}


# --- dynamic sampling: the refill logic on a stand-in for TRL's GRPOTrainer -----------------------


def test_zero_std_groups():
    import torch

    nan = float("nan")
    r = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [nan, nan], [nan, 1.0], [0.5, nan], [0.5, nan]])
    w = torch.tensor([1.0, 1.0])
    # groups of 2: equal sums | equal sums from different rewards | unscorable + 1 | 0.5 twice
    assert zero_std_groups(r, w, 2, "sum_then_normalize").tolist() == [True, True, True, True]
    assert zero_std_groups(r, w, 2, "normalize_then_sum").tolist() == [True, False, True, True]
    r2 = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    assert zero_std_groups(r2, torch.tensor([1.0]), 2, "sum_then_normalize").tolist() == [False, True]


def test_concat_pads_prompts_left_and_completions_right():
    import torch

    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(1)}
    b = {"prompt_ids": torch.tensor([[8]]), "prompt_mask": torch.tensor([[1]]),
         "completion_ids": torch.tensor([[9, 9, 9]]), "completion_mask": torch.tensor([[1, 1, 1]]),
         "advantages": torch.tensor([-0.5]), "num_items_in_batch": torch.tensor(3)}
    c = concat_rows([a, b], pad_token_id=0)
    assert c["prompt_ids"].tolist() == [[5, 6], [0, 8]] and c["prompt_mask"].tolist() == [[1, 1], [0, 1]]
    assert c["completion_ids"].tolist() == [[7, 0, 0], [9, 9, 9]]
    assert c["completion_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert c["advantages"].tolist() == [0.5, -0.5]
    assert take_rows(c, [1])["completion_ids"].tolist() == [[9, 9, 9]]


class StandIn:
    """What dynamic sampling uses of TRL's GRPOTrainer. A prompt's text says its rewards:
    "solved-*" all 1, "hard-*" all 0 (zero spread), "mixed-*" 0 and 1. Each call returns rows whose
    completion width is the call number, so the refill rounds need padding."""

    def __init__(self, dataset):
        import torch

        self.num_generations = 2
        self.reward_weights = torch.tensor([1.0])
        self.multi_objective_aggregation = "sum_then_normalize"
        self.model = SimpleNamespace(training=True)
        self.args = SimpleNamespace(seed=0)
        self.state = SimpleNamespace(global_step=3)
        self._step = 0
        self.train_dataset = dataset
        self._tokenizer = SimpleNamespace(pad_token_id=0)
        self._metrics = {"train": defaultdict(list)}
        self.calls = []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        import torch

        vals = []
        for i, p in enumerate(prompts):
            kind = p.split("-")[0]
            vals.append(1.0 if kind == "solved" else 0.0 if kind == "hard" else float(i % 2))
        return torch.tensor(vals).unsqueeze(1)

    def _generate_and_score_completions(self, inputs):
        import torch

        self.calls.append([x["prompt"] for x in inputs])
        width = len(self.calls)
        prompts = [x["prompt"] for x in inputs]
        rewards = self._calculate_rewards(inputs, prompts, None, None)[:, 0]
        n = len(inputs)
        ids = torch.tensor([[hash(p) % 100 + 1] * width for p in prompts])
        return {"prompt_ids": torch.ones(n, 1, dtype=torch.long), "prompt_mask": torch.ones(n, 1, dtype=torch.long),
                "completion_ids": ids, "completion_mask": torch.ones(n, width, dtype=torch.long),
                "advantages": rewards - 0.5, "num_items_in_batch": torch.tensor(n * width), "prompt": prompts}


def _stand_in(prompts: list[str], domains: list[str], max_rounds: int):
    from datasets import Dataset

    t = StandIn(Dataset.from_dict({"prompt": prompts, "domain": domains}))
    t.dynamic_sampling_rounds, t.last_rewards = max_rounds, None
    calculate = t._calculate_rewards

    def keep(*a):  # as R1GRPOTrainer._calculate_rewards does
        t.last_rewards = calculate(*a)
        return t.last_rewards

    t._calculate_rewards = keep
    return t


def test_dropped_groups_are_refilled_with_fresh_prompts_of_their_domain():
    t = _stand_in(["mixed-a", "mixed-b", "hard-c", "solved-d"], ["math", "logic", "math", "math"], max_rounds=3)
    batch = [{"prompt": p, "domain": d} for p, d in [("solved-x", "logic"), ("mixed-y", "math"), ("hard-z", "math")]
             for _ in range(2)]
    out = generate_and_score(t, batch, t._generate_and_score_completions)
    # same number of rows; the mixed group kept; the dropped groups replaced, all with a signal
    assert len(out["prompt"]) == 6 and out["completion_ids"].shape[0] == 6
    groups = [out["prompt"][i] for i in range(0, 6, 2)]
    assert groups[0] == "mixed-y" and all(g.startswith("mixed") for g in groups)
    assert sorted(groups[1:]) != ["hard-z", "solved-x"]
    # refills came from the training set, one prompt per dropped group, each of the dropped group's domain.
    # All three rounds run: the seeded draws give the math slot hard-c twice before mixed-a (logic has only
    # mixed-b), so every round is checked against the groups the round before left without signal.
    dom = {"mixed-a": "math", "mixed-b": "logic", "hard-c": "math", "solved-d": "math"}
    assert len(t.calls) == 1 + t.dynamic_sampling_rounds
    missing = ["logic", "math"]  # solved-x and hard-z, the first batch's zero-spread groups
    for call in t.calls[1:]:
        groups = call[::2]
        assert call[1::2] == groups and all(p in dom for p in groups), call  # whole groups of training prompts
        assert [dom[p] for p in groups] == missing, (call, missing)
        missing = [dom[p] for p in groups if not p.startswith("mixed")]
    assert missing == []  # the last round filled the last slot
    # the loss normalizer counts the kept rows' tokens, padded to one width
    assert int(out["num_items_in_batch"]) == int(out["completion_mask"].sum())
    m = t._metrics["train"]
    assert m["dynamic_sampling/zero_std_frac"] == [2 / 3] and m["dynamic_sampling/rounds"] == [3.0]
    assert m["dynamic_sampling/extra_generations"] == [float(sum(len(c) for c in t.calls[1:]))] == [8.0]
    assert m["dynamic_sampling/filled_frac"] == [1.0]


def test_rounds_are_bounded_and_the_batch_keeps_its_size():
    t = _stand_in(["hard-a", "solved-b"], ["math", "math"], max_rounds=2)  # no fresh prompt has a signal
    batch = [{"prompt": p, "domain": "math"} for p in ("mixed-y", "hard-z") for _ in range(2)]
    out = generate_and_score(t, batch, t._generate_and_score_completions)
    assert len(t.calls) == 3  # the batch, then 2 refill rounds of one group each
    assert out["prompt"] == ["mixed-y", "mixed-y", "hard-z", "hard-z"]  # the dropped group fills its slot
    m = t._metrics["train"]
    assert m["dynamic_sampling/rounds"] == [2.0] and m["dynamic_sampling/extra_generations"] == [4.0]
    assert m["dynamic_sampling/filled_frac"] == [0.5]


def test_dynamic_sampling_refuses_several_processes():
    from r1cli.training.dynamic_sampling import check

    cfg = resolve(GRPOStageConfig, sets=["dynamic_sampling=true"])
    with pytest.raises(UserError, match="one process"):
        check(cfg, SimpleNamespace(world_size=2))
    check(cfg, SimpleNamespace(world_size=1))


@pytest.mark.parametrize("steps_per_generation", [1, 2])
def test_dynamic_sampling_on_the_toy(toy_base, toy_data, tmp_path, steps_per_generation):
    """With steps_per_generation 2, one generation of 4 groups feeds 2 steps (TRL's buffer)."""
    out = tmp_path / "ds"
    main(["grpo", "--model", str(toy_base), "--data", str(toy_data / "rl"), "--out", str(out), *SHORT,
          "--set", "trl.max_steps=2", "--set", "algorithm=dapo", "--set", "dynamic_sampling=true",
          "--set", "dynamic_sampling_max_rounds=1", "--set", "samples_every=1",
          "--set", f"trl.steps_per_generation={steps_per_generation}"])
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["steps"] == 2 and m["config"]["dynamic_sampling"] is True
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in steps if "dynamic_sampling/zero_std_frac" in r]
    assert len(steps) == 2 // steps_per_generation
    groups = 2 * steps_per_generation
    for r in steps:
        # one refill round: one fresh group of 4 completions for every zero-spread group of a generation batch
        assert r["dynamic_sampling/extra_generations"] == r["dynamic_sampling/zero_std_frac"] * groups * 4
        assert r["dynamic_sampling/rounds"] == (1.0 if r["dynamic_sampling/zero_std_frac"] > 0 else 0.0)
    if steps_per_generation == 1:  # the last log is a generation's
        assert "dynamic_sampling/zero_std_frac" in m["metrics"]["final"]
