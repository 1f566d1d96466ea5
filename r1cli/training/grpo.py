"""What `r1 grpo` and `r1 align` share: the policy's tokenizer and prompts through the template, the
checks that run before the first step, reward wrapping that logs samples, degenerate-run warnings, and
the trainer: TRL's GRPOTrainer with the extensions a stage config asks for (`grpo_trainer_class`; the
loss and the algorithm are TRL's).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from rich.console import Console

from r1cli.artifacts import StageRun
from r1cli.errors import UserError
from r1cli.generation.lengths import filter_overhead, fit_prompts, model_context
from r1cli.templates import R1ZERO_TEMPLATE, apply_template, completion_text, prefilled_think
from r1cli.training import dynamic_sampling, micro_batches, rollouts
from r1cli.tools import ToolRunner, check_template, resolve_tools
from r1cli.tools.loop import TokenToolLoop
from r1cli.training.telemetry import Callback

console = Console(stderr=True)

# --- prompts ------------------------------------------------------------------------------


def prepare_prompts(ds, template: str, r1zero_template: str | None = None, system: str | None = None):
    """The `prompt` column as the model will see it: chat messages (r1) or the r1zero string."""
    text = r1zero_template or R1ZERO_TEMPLATE

    def one(row):
        return {"prompt": apply_template(row["prompt"], template, text, system)}

    # keep_in_memory: a dataset loaded from a saved dir would get cache files written into it
    return ds.map(one, desc="applying the template", keep_in_memory=True)


def load_tokenizer(cfg, model: Path):
    """(the policy's tokenizer, whether its completions start inside <think>), checked against the template
    and the rewards before any model loads."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if cfg.template == "r1" and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer in {model} has no chat template: use --template r1zero or a chat model")
    detected = prefilled_think(tokenizer, cfg.template)
    if detected and cfg.prefilled_think is False and "format" in cfg.rewards:
        raise UserError("the chat template pre-fills <think> in the prompt, so completions never contain it and the "
                        "format reward would always be 0: set prefilled_think: true (or leave it unset to detect it)")
    return tokenizer, prefilled_think(tokenizer, cfg.template, cfg.prefilled_think)


def check_tools(cfg, args, tokenizer) -> None:
    """With `tools`, before the model loads: the chat template must write tool calls, and the loop that will
    run them must be able to. r1cli's decode loop needs `</tool_call>` as one token; TRL's own loop (vLLM,
    or decode_loop off) parses replies with a response template, which TRL sets only for chat templates it
    knows (Qwen, Llama 3, ...) unless the tokenizer brings its own."""
    if not cfg.tools:
        return
    if cfg.decode_loop and not args.use_vllm:
        TokenToolLoop.check(tokenizer)
        check_template(tokenizer)
        return
    import copy

    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    if not supports_tool_calling(tokenizer):
        check_template(tokenizer)  # raises, naming what the template lacks
    if getattr(tokenizer, "response_template", None) is None and getattr(tokenizer, "response_schema", None) is None:
        try:
            add_response_schema(copy.deepcopy(tokenizer))
        except ValueError:
            raise UserError("tools with vLLM (or decode_loop: false) run TRL's tool loop, which cannot parse this chat "
                            "template's replies (TRL knows Qwen's, Llama 3's and a few others'): use such a model, "
                            "or decode_loop: true without vLLM") from None


def fit_context(cfg, args, ds, tokenizer, model: Path, data) -> tuple[object, int]:
    """(the prompts that leave trl.max_completion_length tokens of the model's context, how many were left
    out): `ds` is after prepare_prompts; too long prompts are refused unless drop_long_prompts
    (r1cli/generation/lengths.py, the check every stage that generates runs)."""
    budget = args.max_completion_length
    ids = ds["id"] if "id" in ds.column_names else list(range(len(ds)))
    overhead = filter_overhead(tokenizer, lambda q: apply_template(q, cfg.template, cfg.r1zero_template or R1ZERO_TEMPLATE,
                                                                    cfg.system_prompt), cfg.template)
    kept, dropped = fit_prompts(list(ds["prompt"]), ids, tokenizer, budget=budget, context=model_context(model),
                                drop=cfg.drop_long_prompts, budget_name="trl.max_completion_length",
                                lower="--set trl.max_completion_length={n}", model=model, data=data,
                                template=cfg.template, filter_overhead=overhead)
    if dropped:
        ds = ds.select(kept)
        console.print(f"left out {dropped} prompts that leave fewer than trl.max_completion_length={budget} tokens of "
                      "the model's context (drop_long_prompts)", markup=False, highlight=False)
    return ds, dropped


def check_reward_columns(rewards: list, ds, where: str) -> None:
    cols = set(ds.column_names)
    for name, fn, _ in rewards:
        missing = [c for c in getattr(fn, "required_columns", ()) if c not in cols]
        if missing:
            raise UserError(f"reward {name!r} needs column {missing[0]!r}, which {where} lacks: add it or drop the reward")


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

    def wrap_all(self, rewards: list) -> list:
        """TRL's reward_funcs: each (name, function, weight) of resolve_rewards, wrapped."""
        return [self.wrap(name, fn) for name, fn, _ in rewards]

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
    """Signs that a GRPO run has no learning signal: completions cut off, groups of equal rewards, a collapsed policy."""
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
    """The manifest's summary of the last logged step: reward, spread, lengths, KL, entropy, per-reward means."""
    keep = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/max_length",
            "completions/clipped_ratio", "kl", "entropy", "learning_rate", "step_time_s")
    return {k: rec[k] for k in keep if k in rec} | {k: v for k, v in rec.items()
                                                    if k.startswith(("rewards/", "dynamic_sampling/"))}


def grpo_trainer_class():
    """TRL's GRPOTrainer with r1cli's extensions, each on only when the stage config asks for it (made here
    so that trl is imported only inside a stage's run). See R1GRPOTrainer for what it overrides."""
    from trl import GRPOTrainer

    class R1GRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer, taking `stage_config` (a GRPOStageConfig or AlignConfig) for the extensions:

        - `decode_loop` (without vLLM): rollouts from r1cli's decode loop, through TRL's public
          `rollout_func` hook (rollouts.decode_rollout);
        - `dynamic_sampling`: DAPO's dynamic sampling (dynamic_sampling.py);
        - `micro_batch_by_length`: micro-batches of rows of one length (micro_batches.py);
        - with `trl.use_vllm` on a CPU, vLLM's engine keeps weights TRL can reload (generation/vllm_backend.py);
        - `tools`: in the decode loop, r1cli's tool loop (tools/loop.py TokenToolLoop, its results masked through
          TRL's `env_mask`); otherwise TRL's public `tools=` (its own loop), each call through r1cli's ToolRunner.

        TRL's private methods it overrides (OVERRIDES; tests/test_grpo.py checks each one's signature against the
        installed TRL and fails naming the method when an upgrade changes it):
        - `_calculate_rewards(inputs, prompts, completions, completion_ids_list)`: keeps the rewards it returns
          (`last_rewards`) for dynamic sampling;
        - `_generate_and_score_completions(inputs)`: dynamic sampling's refill rounds around TRL's own;
        - `_prepare_inputs(generation_batch)`: the length-sorted split of a generation batch.
        The decode loop also calls `_tokenize_prompts(prompts)` so that its prompts are TRL's token for token.
        """

        def __init__(self, *args, stage_config, **kw):
            trl_args = kw["args"]
            self.tool_rollout = None
            if stage_config.tools:
                tools = resolve_tools(stage_config.tools, stage_config)
                if stage_config.decode_loop and not trl_args.use_vllm:
                    self.tool_rollout = TokenToolLoop(kw["processing_class"], tools, stage_config)
                    # TRL decodes completions with the tokenizer's response template when it has one, as one
                    # assistant message: a trajectory of several turns would lose its first ones. Without it,
                    # TRL decodes the ids as they are (the results' text included, special tokens dropped)
                    kw["processing_class"] = plain = copy.copy(kw["processing_class"])
                    plain.response_template = plain.response_schema = None
                else:
                    runner = ToolRunner(tools, stage_config)
                    kw["tools"] = [trl_tool(t, runner) for t in tools]
            if trl_args.use_vllm:
                from r1cli.generation.vllm_backend import reloadable_cpu_weights

                reloadable_cpu_weights()  # before TRL starts its engine
            elif stage_config.decode_loop:
                kw["rollout_func"] = rollouts.decode_rollout
            import warnings

            with warnings.catch_warnings():  # TRL calls rollout_func experimental: r1cli pins the TRL it was tested with
                warnings.filterwarnings("ignore", message=".*'rollout_func', which is an experimental feature.*")
                super().__init__(*args, **kw)
            self.dynamic_sampling_rounds = stage_config.dynamic_sampling_max_rounds if stage_config.dynamic_sampling else 0
            self.micro_batch_by_length = stage_config.micro_batch_by_length
            self.last_rewards = None

        def log(self, logs, start_time=None):
            if self.tool_rollout is not None and "loss" in logs:  # TRL's names, over the steps since the last log
                stats = self.tool_rollout.runner.stats
                logs = {**logs, **stats.metrics()}
                stats.samples, stats.calls = 0, 0
                stats.failures.clear()
            super().log(logs, start_time)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            self.last_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            return self.last_rewards

        def _generate_and_score_completions(self, inputs):
            if not self.dynamic_sampling_rounds or not self.model.training:
                return super()._generate_and_score_completions(inputs)
            return dynamic_sampling.generate_and_score(self, inputs, super()._generate_and_score_completions)

        def _prepare_inputs(self, generation_batch):
            if not self.micro_batch_by_length or not self.model.training:
                return super()._prepare_inputs(generation_batch)
            return micro_batches.prepare_inputs(self, generation_batch)

    return R1GRPOTrainer


def trl_tool(tool, runner):
    """A tool for TRL's `tools=`: the same name, signature and docstring (TRL shows the model its schema),
    called through r1cli's runner (a user tool runs in a killable child); a failed call raises with the
    runner's message, which TRL hands the model and counts in tools/failure_frequency."""
    import functools

    from r1cli.tools.calls import ParsedCall

    @functools.wraps(tool.function)
    def call(**arguments):
        text, ok = runner.run(ParsedCall(tool.name, arguments, None, ""))
        if not ok:
            raise RuntimeError(text.removeprefix("error: "))
        return text

    return call


# the TRL private methods R1GRPOTrainer overrides or calls, with the parameters it relies on
OVERRIDES = {
    "_calculate_rewards": ("self", "inputs", "prompts", "completions", "completion_ids_list"),
    "_generate_and_score_completions": ("self", "inputs"),
    "_prepare_inputs": ("self", "generation_batch"),
    "_tokenize_prompts": ("self", "prompts"),
}
