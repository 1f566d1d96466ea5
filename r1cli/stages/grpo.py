"""`r1 grpo`: reasoning-oriented RL with rule rewards (R1-Zero and stage 2), on TRL's GRPOTrainer.

R1-Zero: GRPO straight on the base with the r1zero template (accuracy + format rewards).
Stage 2: GRPO on the cold-start checkpoint with the R1 chat template, adding the paper's
language-consistency reward.

    r1 grpo --model runs/demo/base --data runs/demo/data/rl --out runs/demo/r1zero \\
        --recipe recipes/toy/r1zero.yaml --template r1zero
    r1 grpo --model runs/demo/coldstart --data runs/demo/data/rl --out runs/demo/grpo \\
        --recipe recipes/toy/grpo.yaml --eval-data runs/demo/data/eval

Our part is the recipe, the rewards, the checks and the run dir; the algorithm is TRL's.
"""

from __future__ import annotations

from pathlib import Path

from r1cli import dynamic_sampling, rl, rollouts, training
from r1cli.artifacts import check_input, check_model_dir, check_output
from r1cli.config import GRPOStageConfig
from r1cli.data import load_prompts
from r1cli.errors import UserError
from r1cli.evaluation import before_after
from r1cli.rewards import resolve_rewards


def run(cfg: GRPOStageConfig, *, model: Path, data: Path, out: Path, eval_data: Path | None = None,
        force: bool = False, resume: bool = False, stage: str = "grpo") -> Path:
    # --- check inputs: every check before the model loads
    model = check_model_dir(model)
    check_output(out, force, resume)
    ds = load_prompts(check_input(data, "--data"))
    if eval_data is not None:  # read now: a bad file found after training would cost the run
        load_prompts(eval_data, "--eval-data")
    # --- heavy libraries: imported here, after the checks that need none of them (seconds)
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if cfg.template == "r1" and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer in {model} has no chat template: use --template r1zero or a chat model")
    prefilled = rl.detect_prefilled(tokenizer, cfg.template, cfg.prefilled_think, cfg.rewards)
    rewards = resolve_rewards(cfg.rewards, prefilled_think=prefilled, template=cfg.template, **cfg.reward_options)
    rl.check_reward_columns(rewards, ds, str(data))
    ds = rl.prepare_prompts(ds, cfg.template, cfg.r1zero_template, cfg.system_prompt)
    args = training.build_args(cfg, out, reward_weights=[w for _, _, w in rewards],
                               defaults={"save_strategy": "steps", "save_steps": 50})
    rl.check_vllm(args)
    dynamic_sampling.check(cfg, args)
    rollouts.check(cfg, args)
    rl.check_prompt_lengths(ds, tokenizer, args.max_completion_length,
                            getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", None))

    # --- train (a resumed run whose weights were already saved goes straight to what is left)
    with training.trainer_output(out, kind="checkpoint", stage=stage, config=training.manifest_config(cfg, args),
                                 inputs=[model, data] + ([eval_data] if eval_data else []),
                                 force=force, resume=resume) as run_:
        if not training.already_trained(run_):
            rounds = cfg.dynamic_sampling_max_rounds if cfg.dynamic_sampling else None
            trainer, result, telemetry = rl.train_grpo(run_, model, tokenizer, ds, rewards, args,
                                                       title=f"r1 {stage}", samples_every=cfg.samples_every,
                                                       peft=cfg.peft, dynamic_rounds=rounds,
                                                       by_length=cfg.micro_batch_by_length, decode_loop=cfg.decode_loop)
            training.save_checkpoint(trainer, tokenizer, run_)
            run_.counts.update(prompts=len(ds), steps=trainer.state.global_step,
                               completions=trainer.state.global_step * args.per_device_train_batch_size
                               * args.gradient_accumulation_steps * trainer.accelerator.num_processes)
            run_.metrics.update(train_runtime_s=round(result.metrics["train_runtime"], 2), prefilled_think=prefilled,
                                final=rl.grpo_metrics_row(telemetry.latest))
            training.mark_trained(run_)

        # --- before / after on --eval-data
        if eval_data is not None and training.is_main_process():
            run_.metrics["eval"] = before_after(model, run_.partial, eval_data, cfg.eval, template=cfg.template,
                                                r1zero_template=cfg.r1zero_template)
    return out
