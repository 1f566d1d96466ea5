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

from r1cli.artifacts import check_input, check_model_dir, check_output
from r1cli.data import load_prompts
from r1cli.evaluation import before_after
from r1cli.recipe import Resolved
from r1cli.rewards import resolve_rewards
from r1cli.training import lora, rundir
from r1cli.training.args import manifest_config, model_dtype
from r1cli.training.grpo import (
    SampleLog,
    check_reward_columns,
    check_tools,
    degenerate_warnings,
    fit_context,
    grpo_metrics_row,
    grpo_trainer_class,
    load_tokenizer,
    prepare_prompts,
)
from r1cli.training.telemetry import Telemetry


def run(res: Resolved, *, model: Path, data: Path, out: Path, eval_data: Path | None = None,
        force: bool = False, resume: bool = False) -> Path:
    cfg, args = res.config, res.trl  # the TRL config was built and checked with the recipe (r1cli/recipe.py)
    # --- check inputs: every check before the model loads
    model = check_model_dir(model)
    check_output(out, force, resume)
    ds = load_prompts(check_input(data, "--data"))
    if eval_data is not None:  # read now: a bad file found after training would cost the run
        load_prompts(eval_data, "--eval-data")
    tokenizer, prefilled = load_tokenizer(cfg, model)
    check_tools(cfg, args, tokenizer)
    rewards = resolve_rewards(cfg.rewards, prefilled_think=prefilled, template=cfg.template, **cfg.reward_options)
    check_reward_columns(rewards, ds, str(data))
    ds = prepare_prompts(ds, cfg.template, cfg.r1zero_template, cfg.system_prompt)
    ds, dropped = fit_context(cfg, args, ds, tokenizer, model, data)

    # --- train (a resumed run whose weights were already saved goes straight to what is left)
    with rundir.trainer_output(out, kind="checkpoint", stage="grpo", config=manifest_config(res),
                        inputs=[model, data] + ([eval_data] if eval_data else []), force=force, resume=resume) as run_:
        if not rundir.already_trained(run_):
            # --- heavy libraries: imported here, after every check (seconds)
            import torch
            from transformers import AutoModelForCausalLM

            GRPOTrainer = grpo_trainer_class()  # TRL's, with the extensions cfg asks for (r1cli/training/grpo.py)
            samples = SampleLog(run_, cfg.samples_every)
            torch.manual_seed(args.seed)
            policy = AutoModelForCausalLM.from_pretrained(model, dtype=model_dtype(args), **lora.load_kwargs(cfg.peft))
            telemetry = Telemetry(run_, "r1 grpo", show=("reward", "completions/mean_length", "rewards/accuracy/mean"),
                                  warn=degenerate_warnings)
            trainer = GRPOTrainer(model=policy, reward_funcs=samples.wrap_all(rewards), args=args, train_dataset=ds,
                                  processing_class=tokenizer, callbacks=[telemetry, samples.callback()],
                                  peft_config=lora.lora_config(cfg.peft), stage_config=cfg)
            rundir.set_callbacks(trainer)
            result = trainer.train(resume_from_checkpoint=rundir.resume_checkpoint(run_))
            samples.flush()
            rundir.save_checkpoint(trainer, tokenizer, run_)
            run_.counts.update(prompts=len(ds), dropped_long_prompts=dropped, steps=trainer.state.global_step,
                               completions=trainer.state.global_step * args.per_device_train_batch_size
                               * args.gradient_accumulation_steps * trainer.accelerator.num_processes)
            run_.metrics.update(train_runtime_s=round(result.metrics["train_runtime"], 2), prefilled_think=prefilled,
                                final=grpo_metrics_row(telemetry.latest))
            rundir.mark_trained(run_)

        # --- before / after on --eval-data
        if eval_data is not None and rundir.is_main_process():
            run_.metrics["eval"] = before_after(model, run_.partial, eval_data, cfg.eval, template=cfg.template,
                                                r1zero_template=cfg.r1zero_template)
    return out
