"""A trainer stage's run dir: resume from OUT.partial/, output across processes (accelerate launch),
and the final checkpoint saved per the directory contract.

Used by `r1 coldstart`/`r1 sft`, `r1 grpo`, `r1 align` and `r1 rm`, so that no trainer stage
wires these its own way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

from rich.console import Console

from r1cli.artifacts import StageRun, check_output, partial_path, read_manifest, stage_output
from r1cli.training import lora, trackers

console = Console(stderr=True)
CHECKPOINTS = "trainer"  # where TRL writes its checkpoints inside OUT.partial/ (removed at the end)


def resume_checkpoint(run: StageRun) -> str | None:
    """The last complete TRL checkpoint in OUT.partial/ when resuming, else None.

    A kill lands anywhere: inside checkpoint-N while TRL writes it in place (trainer_state.json
    last), or steps after the last checkpoint, whose lines are already in metrics.jsonl. So the
    run continues from the newest checkpoint with a readable trainer_state.json; newer, half-written
    ones are removed and the logs are cut back to that step, so no step is logged twice.
    """
    if not run.resumed:
        return None
    found, step = None, 0
    d = run.partial / CHECKPOINTS
    ckpts = sorted(d.glob("checkpoint-*"), key=_step_of, reverse=True) if d.is_dir() else []
    for c in ckpts:
        try:
            step = int(json.loads((c / "trainer_state.json").read_text())["global_step"])
            found = c
            break
        except (OSError, ValueError, KeyError):
            continue
    state = process_state()
    if state.is_main_process:
        for c in ckpts:
            if found is None or _step_of(c) > _step_of(found):
                shutil.rmtree(c, ignore_errors=True)
        # a sample is logged at the global_step its rewards were computed at, i.e. one step before its update
        _keep_lines(run.path("metrics.jsonl"), lambda r: r.get("step", 0) <= step)
        _keep_lines(run.path("samples.jsonl"), lambda r: r.get("step", 0) < step)
    state.wait_for_everyone()
    run.counts["resumed_from_step"] = step
    if found is not None:
        console.print(f"resuming from {found} (step {step})", markup=False, highlight=False)
    return str(found) if found is not None else None


def _step_of(path: Path) -> int:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _keep_lines(path: Path, keep) -> None:
    """Rewrite a JSONL log with only the records `keep` accepts (a half-written last line goes too)."""
    if not path.is_file():
        return
    lines = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if keep(rec):
            lines.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)


def restore_token_count(trainer, checkpoint: str | None) -> None:
    """TRL's SFTTrainer counts num_tokens in an attribute a checkpoint does not restore: take it
    from the checkpoint's log history, or the resumed run's num_tokens restart from 0."""
    if checkpoint is None or not hasattr(trainer, "_total_train_tokens"):
        return
    history = json.loads((Path(checkpoint) / "trainer_state.json").read_text()).get("log_history", [])
    seen = [h["num_tokens"] for h in history if "num_tokens" in h]
    if seen:
        trainer._total_train_tokens = seen[-1]


# --- output across processes -------------------------------------------------------------------


@contextlib.contextmanager
def trainer_output(out, **kw) -> Iterator[StageRun]:
    """stage_output for a run that may be launched as several processes (accelerate launch):
    every rank checks OUT, the main rank creates OUT.partial/, all ranks write their shard of
    TRL's checkpoint state there, and the main rank finishes (renames) once all are done."""
    state = process_state()
    if state.num_processes == 1:
        with stage_output(out, **kw) as run:
            yield run
            drop_trainer_checkpoints(run)
        return
    check_output(out, kw.get("force", False), kw.get("resume", False))
    state.wait_for_everyone()
    cm = None
    if state.is_main_process:
        cm = stage_output(out, **kw)
        run = cm.__enter__()
    state.wait_for_everyone()
    if cm is None:
        p = partial_path(out)
        m = read_manifest(p) if kw.get("resume") else None
        run = StageRun(out=Path(out), partial=p, kind=kw["kind"], stage=kw["stage"], config=kw["config"],
                       inputs=[], resumed=kw.get("resume", False), saved=bool(m and m.get("saved")))
        run.log_metrics = lambda rec: None  # only the main rank writes telemetry
        run.log_sample = lambda rec: None
    try:
        yield run
    except BaseException:
        if cm is not None:
            cm.__exit__(*sys.exc_info())
        raise
    state.wait_for_everyone()
    if cm is not None:
        drop_trainer_checkpoints(run)
        cm.__exit__(None, None, None)


def process_state():
    """accelerate's PartialState for this run. Without a GPU it must be made with cpu=True, and
    before anything else makes it (it is a singleton): otherwise the ranks of a 2-process launch
    each see a world of one and train alone (accelerate only joins CPU ranks over gloo for cpu).
    An FSDP or DeepSpeed launch on CPU needs a state made its own way (below), kept by TRL's
    args (device_defaults): otherwise accelerate trains it as plain DDP without saying so."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    if torch.cuda.is_available():
        return PartialState()
    engine = cpu_engine()
    if engine == "deepspeed":
        # accelerate starts DeepSpeed only for a state made without cpu=True; DeepSpeed's CPU
        # accelerator then joins the ranks over gloo (oneCCL only when its bindings are installed)
        return PartialState(backend="gloo")
    state = PartialState(cpu=True)
    if engine == "fsdp" and state.distributed_type == DistributedType.MULTI_CPU:
        # accelerate (1.15) turns FSDP on only for GPU-like distributed types: MULTI_CPU ranks would
        # silently train as plain DDP. The device stays the CPU; the Accelerator then makes it FSDP.
        PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU
    return state


def cpu_engine() -> str | None:
    """"fsdp" or "deepspeed" when `accelerate launch` was given such a config on a machine without a
    GPU (the launcher says so in the environment), else None."""
    import torch

    if torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    return None


def is_main_process() -> bool:
    return process_state().is_main_process


def set_callbacks(trainer) -> None:
    """With tqdm off, transformers prints every log dict; Telemetry already shows and records them.
    The trackers of trl.report_to write into OUT.partial/ (r1cli/training/trackers.py)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trackers.point_into(trainer, Path(trainer.args.output_dir).parent)  # output_dir is OUT.partial/trainer


def save_checkpoint(trainer, tokenizer, run: StageRun):
    """The final model + tokenizer into OUT.partial/ (loadable by AutoModelForCausalLM); a LoRA run's
    merged model, with its adapter in OUT.partial/adapter/ (r1cli/training/lora.py). Returns the model saved."""
    main = trainer.accelerator.is_main_process
    if lora.is_peft(trainer.model):
        model, run.peft = lora.save_merged(trainer, run.partial, main)
    else:
        trainer.save_model(str(run.partial))
        model = trainer.model
    if main:
        tokenizer.save_pretrained(str(run.partial))
    acc = trainer.accelerator
    if acc.num_processes > 1:  # how the run was spread (MULTI_CPU/MULTI_GPU = DDP, FSDP, DEEPSPEED + ZeRO stage)
        run.counts.update(processes=acc.num_processes, distributed=str(acc.distributed_type.value))
        if acc.state.deepspeed_plugin is not None:
            run.counts["zero_stage"] = acc.state.deepspeed_plugin.zero_stage
    return model


def mark_trained(run: StageRun) -> None:
    """After the final weights and the training counts are in OUT.partial/: from here on an error keeps
    them, and --resume does only what is left (StageRun.mark_saved). The main rank records it."""
    if process_state().is_main_process:
        run.mark_saved()
    process_state().wait_for_everyone()


def already_trained(run: StageRun) -> bool:
    """A resumed run whose weights were saved before it stopped: training is done, the rest is not."""
    if run.resumed and run.saved:
        console.print(f"the trained model is in {run.partial} already (saved before the run stopped): "
                      "skipping the training, finishing the rest", markup=False, highlight=False)
        return True
    return False


def drop_trainer_checkpoints(run: StageRun) -> None:
    """OUT holds one model, not its history: TRL's checkpoints go just before the rename, not
    right after training, so that a kill during the before/after eval still resumes at the end."""
    shutil.rmtree(run.partial / CHECKPOINTS, ignore_errors=True)
