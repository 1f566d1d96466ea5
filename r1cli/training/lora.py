"""LoRA and QLoRA for the trainer stages (`r1 coldstart`, `r1 sft`, `r1 grpo`, `r1 align`, `r1 rm`).

A recipe's `peft:` section is PEFT's `LoraConfig` (checked against its fields when the recipe is
resolved, r1cli/recipe.py, with the keys r1cli/config.py names); empty or absent means full fine-tuning. TRL's trainers get it as
`peft_config=` and train the adapter only. What the stage leaves in OUT:

    OUT/                 the merged model (base + LoRA delta): a plain HF dir, loadable with
                         AutoModelForCausalLM, so every later stage takes it as --model
    OUT/adapter/         the adapter alone, loadable with PEFT (PeftModel.from_pretrained(base, OUT/adapter))
    OUT/r1.json "peft"   {"method": "lora"|"qlora", "r", "lora_alpha", "target_modules", "trainable_params", ...}

    r1 coldstart --model BASE --data D --out OUT --set peft.r=16 --set peft.lora_alpha=32

QLoRA (`peft.load_in_4bit: true`, r1cli's own key): the base is loaded in 4-bit NF4 with double
quantization and bf16 compute (the QLoRA paper's setting, arXiv:2305.14314) through bitsandbytes,
which needs a CUDA GPU: a CPU-only machine is refused before anything loads. The merged model is
then made from the base reloaded in bf16 (merging into 4-bit weights would round the delta away).
"""

from __future__ import annotations

from pathlib import Path

from r1cli.config import LORA_OWN_KEYS
from r1cli.errors import UserError

ADAPTER = "adapter"  # the adapter's dir inside OUT


# --- checks (before anything loads) -------------------------------------------------------------


def lora_config(section: dict, task_type: str = "CAUSAL_LM"):
    """The section as PEFT's LoraConfig (None for full fine-tuning); LoraConfig's own checks run here."""
    if not section:
        return None
    from peft import LoraConfig

    kwargs = {k: v for k, v in section.items() if k not in LORA_OWN_KEYS}
    try:
        return LoraConfig(**{**kwargs, "task_type": task_type})
    except (ValueError, TypeError) as e:
        raise UserError(f"the peft settings do not fit together: {str(e).splitlines()[0]}") from None


def check(section: dict, args=None, task_type: str = "CAUSAL_LM"):
    """Everything a `peft:` section needs, checked before a model loads: LoraConfig accepts it, the TRL
    settings allow it, and QLoRA has bitsandbytes and a GPU. Returns the LoraConfig (None = full fine-tuning)."""
    config = lora_config(section, task_type)
    if config is not None and getattr(args, "sync_ref_model", False):
        # GRPOTrainer refuses it at init (after the model loaded): with LoRA its reference is the input
        # model (the adapter disabled), which there is no second copy of to sync
        raise UserError("trl.sync_ref_model does not work with LoRA (TRL's reference is the input model, the "
                        "adapter disabled): set trl.sync_ref_model: false, or drop the peft section")
    if section.get("load_in_4bit"):
        import importlib.util

        import torch

        if not torch.cuda.is_available():
            raise UserError("peft.load_in_4bit (QLoRA) needs a CUDA GPU (bitsandbytes' 4-bit kernels): "
                            "on this machine use plain LoRA (drop load_in_4bit)")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("peft.load_in_4bit (QLoRA) needs bitsandbytes: pip install 'r1cli[qlora]'")
    return config


# --- loading and saving ---------------------------------------------------------------------------


def load_kwargs(section: dict) -> dict:
    """Extra from_pretrained arguments: the 4-bit quantization of QLoRA, else none."""
    if not section.get("load_in_4bit"):
        return {}
    import torch
    from accelerate import PartialState
    from transformers import BitsAndBytesConfig

    # a 4-bit model is quantized as it loads onto its GPU: each process's copy goes onto its own
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16), "dtype": torch.bfloat16,
        "device_map": {"": PartialState().local_process_index}}


def is_peft(model) -> bool:
    from accelerate.utils import is_peft_model

    return is_peft_model(model)


def describe(model) -> dict:
    """The manifest's `peft` record, read from the trained PeftModel."""
    cfg = model.peft_config["default"]
    trainable, total = model.get_nb_trainable_parameters()
    quantized = bool(getattr(model.get_base_model(), "is_loaded_in_4bit", False))
    targets = cfg.target_modules
    return {"method": "qlora" if quantized else "lora", "r": cfg.r, "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            # "all-linear" comes back as every module's full name: keep the kinds (q_proj, down_proj, ...)
            "target_modules": sorted({t.rsplit(".", 1)[-1] for t in targets})
            if isinstance(targets, (set, list, tuple)) else targets,
            "modules_to_save": sorted(cfg.modules_to_save or []),
            "trainable_params": int(trainable), "total_params": int(total), "adapter": ADAPTER}


def save_merged(trainer, out: Path, main: bool):
    """OUT/adapter/ (the adapter, through the trainer so that sharded states are gathered), then OUT/
    as the merged model. Returns (merged model, manifest record); the merged model is None off the main rank."""
    model = trainer.model
    record = describe(model)
    trainer.save_model(str(out / ADAPTER))
    if not main:
        return None, record
    if record["method"] == "qlora":
        merged = _merge_from_disk(model.peft_config["default"].base_model_name_or_path, out / ADAPTER, trainer)
    else:
        merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    return merged, record


def _merge_from_disk(base_path: str, adapter: Path, trainer):
    """QLoRA: the base again in bf16 on the CPU, plus the saved adapter, merged."""
    import torch
    from peft import PeftModel

    auto = type(trainer.model.get_base_model())
    base = auto.from_pretrained(base_path, dtype=torch.bfloat16, device_map="cpu")
    return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
