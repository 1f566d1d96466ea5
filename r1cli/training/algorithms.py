"""The RL algorithm presets of `r1 grpo` and `r1 align` (`algorithm:` in the recipe): each names the
TRL 1.16 `GRPOConfig` values its paper uses. The loss itself is TRL's; a preset only picks its knobs.

    r1 grpo --model runs/demo/coldstart --data runs/demo/data/rl --out runs/demo/dapo \\
        --recipe recipes/toy/grpo.yaml --set algorithm=dapo

| preset  | loss_type | beta  | epsilon | epsilon_high | scale_rewards | importance_sampling_level | mask_truncated_completions |
|---------|-----------|-------|---------|--------------|---------------|---------------------------|----------------------------|
| grpo    | grpo      | 0.001 | 10.0    | (= epsilon)  | group         | token                     | false                      |
| dr_grpo | dr_grpo   | 0.0   | 0.2     | (= epsilon)  | none          | token                     | false                      |
| dapo    | dapo      | 0.0   | 0.2     | 0.28         | group         | token                     | true                       |
| gspo    | grpo      | 0.0   | 3e-4    | 4e-4         | group         | sequence                  | false                      |
| cispo   | cispo     | 0.0   | 0.2     | 5.0          | group         | token                     | false                      |

Where each value comes from:
- grpo, the default: DeepSeek-R1 (arXiv 2501.12948, and its Nature 2025 version, Methods): KL
  coefficient 0.001 with the k3 estimator inside the loss (TRL's loss with beta > 0), clip ratio
  epsilon 10 (its rollouts of 8,192 outputs were split into 16 mini-batches, so far off-policy; on
  policy, one update per generation, the ratio is 1 and no clip acts), each completion's loss
  averaged over its own tokens (GRPO as in DeepSeekMath, arXiv 2402.03300), advantages scaled by
  the group's std.
- dr_grpo: "Understanding R1-Zero-Like Training: A Critical Perspective" (arXiv 2503.20783):
  no division by the group std (scale_rewards none) and no division by each completion's length
  (TRL's dr_grpo sums token losses and divides by the constant max_completion_length); PPO's clip
  0.2; no KL term, as in its R1-Zero runs.
- dapo: "DAPO" (arXiv 2503.14476): clip-higher, eps_low 0.2 / eps_high 0.28 (Sec. 3.1); token-level
  loss over the whole batch (Sec. 3.3, TRL's dapo); overlong filtering, truncated completions out of
  the loss (Sec. 3.4, mask_truncated_completions); no KL (Sec. 2.3). Its dynamic sampling (Sec. 3.2)
  is not a TRL setting: r1cli's own `dynamic_sampling: true` (r1cli/training/dynamic_sampling.py), off unless
  asked for, as it spends extra generations and runs on one process. Its soft overlong punishment
  (Sec. 3.4) is the `overlong` reward: add it to `rewards` with reward_options.max_completion_len.
- gspo: "Group Sequence Policy Optimization" (arXiv 2507.18071, Sec. 5.1 of v2): one importance
  ratio per sequence (the length-normalized sequence likelihood ratio), clipped to [1-3e-4, 1+4e-4],
  sequence-level loss (TRL's grpo loss_type with importance_sampling_level sequence, as TRL's paper
  index does), no KL. The paper splits each rollout batch into 4 mini-batches: set
  trl.steps_per_generation to 4 x gradient_accumulation_steps for that. On policy the ratio is 1 and
  GSPO's clip has nothing to act on.
- cispo: MiniMax-M1 (arXiv 2506.13585): clip the importance-sampling weight itself (stop
  gradient) instead of dropping clipped tokens' gradients, token-level loss, no KL. TRL's cispo bounds
  the weight above by epsilon_high, an absolute ratio (eps_max); the paper gives no number, 5.0 is
  the value TRL documents (from ScaleRL, arXiv 2510.13786). TRL's cispo has no lower bound on the
  weight, which matches the paper's setting with no lower clip; `epsilon` is unused by it.

An explicit `trl:` key wins over the preset; the stage's settings table then names the clash
(training.build_args), and the manifest records the preset, its values and what overrode them
(training.manifest_config).
"""

from __future__ import annotations

# the GRPOConfig fields every preset sets (all of them, so that a preset alone decides the algorithm)
KEYS = ("loss_type", "beta", "epsilon", "epsilon_high", "scale_rewards", "importance_sampling_level",
        "mask_truncated_completions")

PRESETS: dict[str, dict] = {
    "grpo": {"loss_type": "grpo", "beta": 0.001, "epsilon": 10.0, "epsilon_high": None, "scale_rewards": "group",
             "importance_sampling_level": "token", "mask_truncated_completions": False},
    "dr_grpo": {"loss_type": "dr_grpo", "beta": 0.0, "epsilon": 0.2, "epsilon_high": None, "scale_rewards": "none",
                "importance_sampling_level": "token", "mask_truncated_completions": False},
    "dapo": {"loss_type": "dapo", "beta": 0.0, "epsilon": 0.2, "epsilon_high": 0.28, "scale_rewards": "group",
             "importance_sampling_level": "token", "mask_truncated_completions": True},
    "gspo": {"loss_type": "grpo", "beta": 0.0, "epsilon": 3e-4, "epsilon_high": 4e-4, "scale_rewards": "group",
             "importance_sampling_level": "sequence", "mask_truncated_completions": False},
    "cispo": {"loss_type": "cispo", "beta": 0.0, "epsilon": 0.2, "epsilon_high": 5.0, "scale_rewards": "group",
              "importance_sampling_level": "token", "mask_truncated_completions": False},
}


def preset_args(name: str) -> dict:
    """The GRPOConfig values of preset `name` (a copy)."""
    return dict(PRESETS[name])


def overrides(name: str, args) -> dict:
    """{key: (effective value, preset value)} for every preset key whose effective TRL argument differs
    from the preset (an explicit `trl:` key, or a value the stage fixes)."""
    return {k: (getattr(args, k), v) for k, v in PRESETS[name].items() if getattr(args, k) != v}


def record(name: str, args) -> dict:
    """The manifest's account of the preset: its name, its values, and which of them the run overrode."""
    return {"name": name, "values": preset_args(name),
            "overridden": {k: {"effective": eff, "preset": pre} for k, (eff, pre) in overrides(name, args).items()}}
