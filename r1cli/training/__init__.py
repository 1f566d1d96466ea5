"""What the trainer stages (`r1 coldstart`/`r1 sft`, `r1 grpo`, `r1 align`, `r1 rm`) share, one module each:

    args.py              the TRL config (SFTConfig/GRPOConfig/RewardConfig), built when the recipe resolves
    rundir.py            resume from OUT.partial/, output across processes, the final checkpoint
    telemetry.py         metrics.jsonl, the progress bar, plain log lines for files
    grpo.py              R1GRPOTrainer (TRL's GRPOTrainer with the extensions below) and what grpo/align share
    rollouts.py          the decode loop as TRL's rollout_func (decode_loop: true)
    dynamic_sampling.py  DAPO's dynamic sampling (dynamic_sampling: true)
    micro_batches.py     length-sorted micro-batches (micro_batch_by_length: true)
    algorithms.py        the RL algorithm presets (algorithm: grpo | dr_grpo | dapo | gspo | cispo)
    lora.py, trackers.py LoRA/QLoRA (peft:), experiment trackers (trl.report_to)

Nothing here reads a recipe or imports a stage.
"""
