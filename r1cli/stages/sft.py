"""`r1 coldstart` and `r1 sft`: long-CoT supervised fine-tuning with TRL's SFTTrainer.

Stage 1 (cold start) fine-tunes the base on a few thousand readable long-CoT samples so that
RL starts stable; stage 3 retrains the BASE on the rejection-sampled + non-reasoning data
(2 epochs); distillation is the same SFT on a small student. One engine, two commands:

    r1 coldstart --model runs/demo/base --data runs/demo/data/coldstart --out runs/demo/coldstart \\
        --recipe recipes/toy/coldstart.yaml
    r1 sft --model runs/demo/base --data runs/demo/rs --data runs/demo/rs_general --out runs/demo/sft \\
        --recipe recipes/toy/sft.yaml

The loss is on the assistant turn only: rows become prompt/completion pairs, tokenized once
here (so every check runs before the model loads) and handed to TRL with a completion mask.
"""

from __future__ import annotations

import random
from pathlib import Path

from rich.console import Console

from r1cli.artifacts import check_input, check_model_dir, check_output
from r1cli.data import load_prompts, load_sft
from r1cli.errors import UserError
from r1cli.evaluation import before_after
from r1cli.recipe import Resolved
from r1cli.templates import THINK_CLOSE, THINK_OPEN, is_r1_format
from r1cli.training import lora, rundir
from r1cli.training.args import manifest_config, model_dtype
from r1cli.training.telemetry import Telemetry

console = Console(stderr=True)
_PROBE = "r1cli-probe-reasoning"


# --- checks -----------------------------------------------------------------------------------


def reply_start(messages: list[dict]) -> int:
    """Where the reply begins: after the last user (or system) turn. A reply with tools is several turns,
    assistant turns with tool turns (the results) between them."""
    users = [i for i, m in enumerate(messages) if m.get("role") not in ("assistant", "tool")]
    return users[-1] + 1 if users else 0


def check_rows(ds, path, require_reasoning: bool) -> None:
    """Every row ends in an assistant turn; the reply's assistant text is in the R1 format (`sft` also takes
    no-CoT replies)."""
    bad, first = 0, None
    for i, messages in enumerate(ds["messages"]):
        last = messages[-1] if messages else {}
        if last.get("role") != "assistant":
            raise UserError(f"{path} row {i} has no assistant turn (its last message is from {last.get('role')!r}): "
                            "each row of `messages` must end with the assistant's reply")
        text = "".join(m.get("content") or "" for m in messages[reply_start(messages):] if m.get("role") == "assistant")
        ok = is_r1_format(text) or (not require_reasoning and THINK_OPEN not in text and THINK_CLOSE not in text
                                    and text.strip() != "")
        if not ok:
            bad += 1
            first = i if first is None else first
    if bad:
        need = "`<think>\\n...\\n</think>\\n` + summary" + ("" if require_reasoning else ", or a plain reply with no think tags")
        raise UserError(f"{bad} of {len(ds)} rows in {path} have an assistant turn not in the R1 format {need} "
                        f"(first: row {first}): fix them" + (" or train them with `r1 sft`" if require_reasoning else ""))


def check_template(tokenizer, model_path) -> None:
    """The chat template must exist and keep the `<think>` content of the assistant turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer in {model_path} has no chat template: set `chat_template:` in the recipe")
    probe = [{"role": "user", "content": "1+1?"},
             {"role": "assistant", "content": f"{THINK_OPEN}\n{_PROBE}\n{THINK_CLOSE}\n2"}]
    import jinja2

    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False)
    except jinja2.TemplateError as e:
        raise UserError(f"the chat template of {model_path} does not render ({e.__class__.__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}): fix `chat_template:` in the recipe") from None
    if _PROBE not in text:
        raise UserError(f"the chat template of {model_path} strips the <think> content from assistant turns, so the "
                        "CoT would never be trained: set `chat_template:` in the recipe to one that keeps it")


def _ids(encoded) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def tokenize(ds, tokenizer, max_length: int | None):
    """input_ids + completion_mask (1 on the assistant turns of the reply), as TRL accepts pre-tokenized data.
    A reply with tools: each turn's tokens are what rendering it adds to the conversation before it; the
    tool turns (the results the model did not write) and the template's turn headers get no loss."""

    def render(messages, generation_prompt=False):
        return _ids(tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True)) \
            if messages else []

    def one(row):
        messages = [{k: v for k, v in m.items() if v is not None} for m in row["messages"]]
        start = reply_start(messages)
        ids, mask = [], []
        for k in range(start, len(messages)):
            assistant = messages[k]["role"] == "assistant"
            # an assistant turn's header (the generation prompt) belongs to what came before it
            head, full = render(messages[:k], generation_prompt=assistant), render(messages[:k + 1])
            n = _common(head, full)
            if k > start and _common(ids, full) < len(ids):
                raise UserError(f"the chat template renders row {row['id'] if 'id' in row else ''} differently once a later "
                                "turn is added (it rewrites earlier turns), so the tool turns cannot be masked: "
                                "use a template that keeps earlier turns as they are")
            mask = mask + [0] * (n - len(mask)) + [int(assistant)] * (len(full) - n)
            ids = full
        return {"input_ids": ids, "completion_mask": mask, "length": len(ids)}

    out = ds.map(one, remove_columns=ds.column_names, desc="tokenizing")
    too_long = sum(1 for n in out["length"] if max_length and n > max_length)
    if max_length and too_long == len(out):
        raise UserError(f"all {len(out)} sequences are longer than max_length={max_length} tokens: raise trl.max_length "
                        "or shorten the data")
    if too_long:
        console.print(f"[yellow]warning:[/] dropped {too_long} of {len(out)} sequences longer than max_length={max_length}")
        out = out.filter(lambda r: r["length"] <= max_length)
    return out.remove_columns("length"), too_long


def mix(datasets: list, weights: list[float] | None, seed: int):
    """Concatenate the --data sets; weight w uses a set's rows w times (0.5 = a random half, 2 = twice)."""
    from datasets import concatenate_datasets

    if weights is None:
        return concatenate_datasets(datasets)
    if len(weights) != len(datasets):
        raise UserError(f"data_weights has {len(weights)} values for {len(datasets)} --data sets: give one per --data")
    rng = random.Random(seed)
    parts = []
    for ds, w in zip(datasets, weights):
        whole, frac = int(w), w - int(w)
        idx = [i for _ in range(whole) for i in range(len(ds))] + rng.sample(range(len(ds)), round(frac * len(ds)))
        if idx:
            parts.append(ds.select(idx))
    if not parts:
        raise UserError("data_weights leave no rows to train on: give at least one weight > 0")
    return concatenate_datasets(parts).shuffle(seed=seed)


def check_batch(args, n_rows: int) -> None:
    from accelerate import PartialState

    world = PartialState().num_processes
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world
    if global_batch > n_rows:
        raise UserError(f"the global batch (per_device_train_batch_size {args.per_device_train_batch_size} x "
                        f"gradient_accumulation_steps {args.gradient_accumulation_steps} x {world} processes = "
                        f"{global_batch}) is larger than the {n_rows} training rows: lower trl.per_device_train_batch_size")


# --- the stage ------------------------------------------------------------------------------------


def run(res: Resolved, *, stage: str, model: Path, data: list[Path], out: Path, eval_data: Path | None = None,
        force: bool = False, resume: bool = False) -> Path:
    cfg, args = res.config, res.trl  # the TRL config was built and checked with the recipe (r1cli/recipe.py)
    require_reasoning = stage == "coldstart"
    model = check_model_dir(model)
    check_output(out, force, resume)
    if not data:
        raise UserError(f"r1 {stage} needs at least one --data dir")
    sets = []
    for d in data:
        ds = load_sft(check_input(d, "--data"))
        check_rows(ds, d, require_reasoning)
        sets.append(ds)
    if eval_data is not None:  # read now: a bad file found after training would cost the run
        load_prompts(eval_data, "--eval-data")
    # --- heavy libraries: imported here, after the checks that need none of them (seconds)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if cfg.chat_template:
        tokenizer.chat_template = cfg.chat_template
    check_template(tokenizer, model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = mix(sets, cfg.data_weights, cfg.seed)
    inputs = [model, *data] + ([eval_data] if eval_data else [])
    check_batch(args, len(train))
    tokenized, dropped = tokenize(train, tokenizer, args.max_length)
    check_batch(args, len(tokenized))

    # --- train (a resumed run whose weights were already saved goes straight to what is left)
    with rundir.trainer_output(out, kind="checkpoint", stage=stage, config=manifest_config(res),
                        inputs=inputs, force=force, resume=resume) as run_:
        if not rundir.already_trained(run_):
            torch.manual_seed(cfg.seed)
            lm = AutoModelForCausalLM.from_pretrained(model, dtype=model_dtype(args), **lora.load_kwargs(cfg.peft))
            telemetry = Telemetry(run_, f"r1 {stage}", show=("loss", "learning_rate"))
            trainer = SFTTrainer(model=lm, args=args, train_dataset=tokenized, processing_class=tokenizer,
                                 callbacks=[telemetry], peft_config=lora.lora_config(cfg.peft))
            rundir.set_callbacks(trainer)
            checkpoint = rundir.resume_checkpoint(run_)
            rundir.restore_token_count(trainer, checkpoint)
            result = trainer.train(resume_from_checkpoint=checkpoint)
            rundir.save_checkpoint(trainer, tokenizer, run_)
            n_tokens = int(sum(len(x) for x in tokenized["input_ids"]) * args.num_train_epochs)
            run_.counts.update(rows=len(tokenized), dropped_too_long=dropped, datasets=[len(s) for s in sets],
                               steps=trainer.state.global_step, tokens_seen=n_tokens)
            run_.metrics.update(train_loss=round(result.training_loss, 5),
                                train_runtime_s=round(result.metrics["train_runtime"], 2),
                                final_loss=telemetry.latest.get("loss"))
            rundir.mark_trained(run_)

        # --- before / after on --eval-data
        if eval_data is not None and rundir.is_main_process():
            run_.metrics["eval"] = before_after(model, run_.partial, eval_data, cfg.eval)
    return out

