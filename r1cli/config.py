"""The typed config of every stage: what a recipe YAML may set, and the rules each setting obeys.

Each stage has one dataclass; shared parts (sampling, the before/after eval, the judge, the
readability filters) are composed, never copied. Every class checks its own fields when it is
made: a field's range sits beside it (`setting(0.95, gt=0, le=1)`), and `check()` holds the rules
that join several fields. So resolving a recipe (r1cli/recipe.py) checks the whole tree, nested
sections included, before any command touches a file or a model. A class with `TRL_CONFIG` gets a
`trl:` section passed through to that TRL config class. `STAGES` maps the stage name (the recipe's
optional `stage:` key) to its class; the recipe test validates every file under recipes/ against it.
The toy world's two classes live with it, in r1cli/toy/config.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from r1cli.errors import UserError
from r1cli.settings import ConfigError, Section, needs, setting
from r1cli.tools.registry import ToolSettings
from r1cli.toy.config import ToyBaseConfig, ToyDataConfig

# the rewards that only score general rows (reward models): r1 align routes them by `domain`
PREFERENCE_REWARDS = ("helpfulness", "harmlessness")
# how r1 reject-sample verifies a row: rule verifiers (rewards) by domain, else the judge or the rule
RULE_VERIFIERS = ("accuracy", "code")
VERIFIERS = (*RULE_VERIFIERS, "judge", "rule")

# the `peft:` section (r1cli/training/lora.py): r1cli's own keys beside LoraConfig's, the LoraConfig fields the
# stage or PEFT sets (task_type: causal LM, or sequence classification for r1 rm), and ranges LoraConfig does not
# check itself (a rank of 0 would fail only after the model loads)
LORA_OWN_KEYS = {"load_in_4bit": bool}
LORA_NOT_SETTABLE = ("task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
                     "inference_mode")
LORA_BOUNDS = {"r": {"ge": 1}, "lora_alpha": {"gt": 0}, "lora_dropout": {"ge": 0, "lt": 1}}


@dataclass
class SamplingConfig(Section):
    """How completions are drawn (paper's eval setting: T=0.6, top-p 0.95); temperature 0 = greedy.
    Every backend takes this class (r1cli/generation), with the samples per prompt and the seed."""

    temperature: float = setting(0.6, ge=0)
    top_p: float = setting(0.95, gt=0, le=1)
    max_new_tokens: int = setting(256, ge=1)
    # prompts per generate() call (each expanded to n samples)
    batch_size: int = setting(32, ge=1)


@dataclass
class EvalSettings(Section):
    """How a model is evaluated (r1cli/evaluation.py): `r1 eval`'s settings, and the `eval:` section of
    the training stages (their --eval-data before/after), which take the template from the stage."""

    seed: int = 0
    # samples per prompt; pass@1 is their mean
    k: int = setting(4, ge=1)
    backend: Literal["transformers", "vllm"] = "transformers"
    # a CoT counts as language-consistent when this share of its words is the target language
    language_threshold: float = setting(0.95, gt=0, le=1)
    # only the first N prompts (null = all)
    limit: int | None = setting(None, ge=1)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class EvalConfig(EvalSettings, ToolSettings):
    """`r1 eval`: pass@1 over k samples, cons@k, format and language rates."""

    template: Literal["r1", "r1zero"] = "r1"
    # the r1zero prompt text with {prompt}; None = the paper's Table 1 template
    r1zero_template: str | None = None
    # a system message put before each chat prompt that has none (as r1 grpo does; not with r1zero)
    system_prompt: str | None = None
    # leave out (and count) the prompts that leave fewer than max_new_tokens of the model's context,
    # instead of refusing them (r1cli/generation/lengths.py)
    drop_long_prompts: bool = False

    def check(self) -> None:
        super().check()
        needs("r1zero_template", self.r1zero_template, "{prompt}")
        no_tools_with_r1zero(self)


def no_tools_with_r1zero(cfg) -> None:
    """Tools are shown to the model through the chat template: the r1zero template is plain text."""
    if cfg.tools and cfg.template == "r1zero":
        raise ConfigError("tools", "need the r1 template (chat prompts): the r1zero template is plain text", cfg.tools)


@dataclass
class HTTPSettings(Section):
    """How r1 talks to a served model (r1cli/generation/remote.py, the one HTTP client)."""

    # requests in flight; retries after a timeout / refused connection / 429 / 5xx (backoff_s doubling each time)
    concurrency: int = setting(8, ge=1)
    retries: int = setting(3, ge=0)
    backoff_s: float = setting(1.0, ge=0)
    # seconds for a whole reply
    timeout_s: float = setting(120.0, gt=0)


@dataclass
class RMServerConfig(HTTPSettings):
    """Reward models served over HTTP: `--helpful-rm http://host:8000/v1` (vLLM's /classify, `make serve-rm`)."""

    # the `model` field sent (the server's --served-model-name; `make serve-rm` serves "rm")
    served_model: str = "rm"
    # the RMs' tokenizer dir, when the dir the server reports (/v1/models `root`) is not on this machine
    tokenizer: str | None = None
    # a reward call stops the run (one line) when more than this share of its rows got no score after every
    # retry; below it those rows get None (skipped by TRL, counted in rm_http/<reward>/failed_rows)
    max_failed_share: float = setting(0.5, ge=0, le=1)
    timeout_s: float = setting(60.0, gt=0)


def check_rm_source(flag: str, value: str | None) -> None:
    """A reward model is a checkpoint dir or an http(s) URL; any other scheme is a mistake, found now."""
    if value and "://" in value and not re.match(r"^https?://", value):
        raise ConfigError(flag, "must be a reward-model dir or an http:// URL (e.g. http://localhost:8000/v1)", value)


@dataclass
class ScoreConfig(Section):
    """`r1 score`: reward columns for a dataset of completions."""

    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    # options passed to every reward factory (timeout, max_completion_len for overlong, ...)
    reward_options: dict = field(default_factory=dict)
    # what `format` checks: r1 (<think>\n...\n</think>\n + summary) or r1zero (<think> + <answer> tags)
    template: Literal["r1", "r1zero"] = "r1"
    # math-verify worker processes (None = one per core, up to 4)
    workers: int | None = setting(None, ge=1)
    # the completions were generated after a chat template that pre-fills <think>
    prefilled_think: bool = False
    # reward-model dirs or URLs of served ones (same as --helpful-rm / --harmless-rm)
    helpful_rm: str | None = None
    harmless_rm: str | None = None
    rm_http: RMServerConfig = field(default_factory=RMServerConfig)
    # rows per reward call (a prompt's completions stay in one call, for the group-wise `length`)
    batch_size: int = setting(512, ge=1)

    def check(self) -> None:
        if not self.rewards:
            raise ConfigError("rewards", "must name at least one reward, e.g. accuracy")
        check_rm_source("--helpful-rm", self.helpful_rm)
        check_rm_source("--harmless-rm", self.harmless_rm)


@dataclass
class SFTStageConfig(Section):
    """`r1 coldstart` / `r1 sft`: long-CoT SFT with TRL's SFTTrainer."""

    TRL_CONFIG: ClassVar[str] = "SFTConfig"
    TRL_DEFAULTS: ClassVar[dict] = {"lr_scheduler_type": "cosine", "save_strategy": "epoch"}
    seed: int = 42
    # mixing weights, one per --data (None = concatenate as they are)
    data_weights: list[float] | None = setting(None, ge=0)
    # a Jinja chat template to use when the tokenizer has none (or strips <think>)
    chat_template: str | None = None
    # with --eval-data: how the input and the trained model are evaluated (before/after)
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(k=1, limit=200))
    trl: dict = field(default_factory=dict)
    # LoRA: PEFT's LoraConfig fields (+ load_in_4bit for QLoRA); empty = full fine-tuning (r1cli/training/lora.py)
    peft: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.data_weights is not None and not any(w > 0 for w in self.data_weights):
            raise ConfigError("data_weights", "leave no rows to train on: give at least one weight > 0", self.data_weights)

    def trl_fixed(self) -> dict:
        """The loss is on the assistant turn only; rows come tokenized (r1cli/stages/sft.py)."""
        return {"completion_only_loss": True, "dataset_kwargs": None}


@dataclass
class GRPOStageConfig(ToolSettings):
    """`r1 grpo`: R1-Zero and stage-2 reasoning RL with TRL's GRPOTrainer."""

    TRL_CONFIG: ClassVar[str] = "GRPOConfig"
    TRL_DEFAULTS: ClassVar[dict] = {"save_strategy": "steps", "save_steps": 50}
    seed: int = 42
    template: Literal["r1", "r1zero"] = "r1"
    # the r1zero prompt text with {prompt}; None = the paper's Table 1 template
    r1zero_template: str | None = None
    system_prompt: str | None = None
    # reward name (or pkg.mod:fn) -> weight
    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    # options passed to every reward factory (e.g. max_completion_len for overlong)
    reward_options: dict = field(default_factory=dict)
    # None = detect from the chat template whether it pre-fills <think>
    prefilled_think: bool | None = None
    samples_every: int = setting(10, ge=0)  # prompts + completions + rewards to samples.jsonl every N steps (0 = never)
    # the RL algorithm: a preset of TRL loss settings (r1cli/training/algorithms.py), a `trl:` key wins; grpo is R1's (KL 0.001)
    algorithm: Literal["grpo", "dr_grpo", "dapo", "gspo", "cispo"] = "grpo"
    # DAPO's dynamic sampling (r1cli/training/dynamic_sampling.py): drop the groups whose completions all got the same
    # reward (zero advantage) and refill the batch with fresh prompts, for at most this many extra rounds
    dynamic_sampling: bool = False
    dynamic_sampling_max_rounds: int = setting(3, ge=1)
    micro_batch_by_length: bool = False  # micro-batches of one length, no all-pad columns (r1cli/training/micro_batches.py)
    # prompts that leave fewer than trl.max_completion_length tokens of the context: left out and counted, not refused
    drop_long_prompts: bool = False
    decode_loop: bool = False  # rollouts from r1cli's decode loop, not model.generate; not with vLLM (r1cli/training/rollouts.py)
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(k=4, limit=None))
    trl: dict = field(default_factory=dict)
    # LoRA: PEFT's LoraConfig fields (+ load_in_4bit for QLoRA); empty = full fine-tuning (r1cli/training/lora.py)
    peft: dict = field(default_factory=dict)

    def check(self) -> None:
        super().check()
        needs("r1zero_template", self.r1zero_template, "{prompt}")
        no_tools_with_r1zero(self)
        if not self.rewards:
            raise ConfigError("rewards", "must name at least one reward, e.g. accuracy")

    def trl_fixed(self) -> dict:
        """One TRL reward weight per reward, in the recipe's order; with tools, TRL's own tool loop (when the
        decode loop is off) makes at most max_tool_calls rounds of calls."""
        return {"reward_weights": [float(w) for w in self.rewards.values()],
                **({"max_tool_calling_iterations": self.max_tool_calls} if self.tools else {})}


@dataclass
class RMConfig(Section):
    """`r1 rm`: a reward model for `r1 align` (a sequence-classification head on a causal LM).

    Pairwise (helpfulness, Bradley-Terry on prompt/chosen/rejected) with TRL's RewardTrainer;
    pointwise (harmlessness, BCE on prompt/completion/label) with a small transformers Trainer.
    """

    TRL_CONFIG: ClassVar[str] = "RewardConfig"
    TRL_DEFAULTS: ClassVar[dict] = {"save_strategy": "steps", "save_steps": 200}
    seed: int = 42
    # train on safe/unsafe labels instead of preference pairs (same as --pointwise)
    pointwise: bool = False
    # share of rows held out for the accuracy in the manifest (0 = none)
    eval_fraction: float = setting(0.1, ge=0, lt=1)
    trl: dict = field(default_factory=dict)
    # LoRA on the LM + a fully trained score head (PEFT's SEQ_CLS task); empty = full fine-tuning
    peft: dict = field(default_factory=dict)

    def trl_fixed(self) -> dict:  # nothing the stage fixes
        return {}


@dataclass
class AlignConfig(GRPOStageConfig):
    """`r1 align`: stage-4 all-scenario RL, the `r1 grpo` fields plus reward routing by domain.

    Reasoning rows get the rule rewards, general rows the reward-model rewards; every reward
    returns None where it does not apply, so `rewards` lists them all.
    """

    # paper: temperature 0.7 in stage 4; RM scales differ from the 0/1 rule rewards, so each reward is
    # normalized within its group before the sum
    TRL_DEFAULTS: ClassVar[dict] = {**GRPOStageConfig.TRL_DEFAULTS, "temperature": 0.7,
                                    "multi_objective_aggregation": "normalize_then_sum"}
    rewards: dict[str, float] = field(default_factory=lambda: {
        "accuracy": 1.0, "format": 1.0, "language": 1.0, "helpfulness": 1.0, "harmlessness": 1.0})
    # reward-model dirs, or URLs of served ones (same as --helpful-rm / --harmless-rm)
    helpful_rm: str | None = None
    harmless_rm: str | None = None
    # how served RMs are asked (a URL above): model name, tokenizer, timeouts, retries, the failure share
    rm_http: RMServerConfig = field(default_factory=RMServerConfig)
    # the rewards that score general rows; every other reward returns None on them (paper: rule rewards
    # for reasoning data, reward models for general data, the language reward for all)
    general_rewards: list[str] = field(default_factory=lambda: ["helpfulness", "harmlessness", "language"])
    # mixed: reasoning and general prompts in every batch; alternate: reasoning-only and general-only batches
    mix: Literal["mixed", "alternate"] = "mixed"
    # share of general prompts in the prompt stream (None = their share of the --data rows); when only
    # the RMs score general rows, general prompts join the stream when the RMs start
    general_fraction: float | None = setting(None, ge=0, le=1)
    # the preference rewards apply from this step (>= 1) or this fraction of max_steps (< 1); before
    # it they return None. Paper: the last 400 of 1,700 steps only (longer use led to reward hacking)
    preference_rewards_from: float = setting(1300 / 1700, ge=0)
    # raw RM logit -> reward: sigmoid (0..1, like the rule rewards), none, running (z-score over the
    # scores seen so far), fixed (z-score with the mean/std `r1 rm` measured on its held-out rows)
    rm_normalization: Literal["sigmoid", "none", "running", "fixed"] = "sigmoid"
    # completions per RM forward pass (per request, for a served RM)
    rm_batch_size: int = setting(16, ge=1)

    def check(self) -> None:
        super().check()
        for name in self.general_rewards:
            if name not in self.rewards:
                raise ConfigError("general_rewards", f"names {name!r}, which is not in rewards: add it to rewards or drop it")
        for name in PREFERENCE_REWARDS:
            if name in self.rewards and name not in self.general_rewards:
                raise ConfigError("general_rewards", f"must list {name!r}: that reward only scores general rows")
        for name, key in zip(PREFERENCE_REWARDS, ("helpful_rm", "harmless_rm")):
            check_rm_source("--" + key.replace("_", "-"), getattr(self, key))
            if getattr(self, key) and name not in self.rewards:
                flag = "--" + key.replace("_", "-")
                raise UserError(f"{flag} is given but reward {name!r} is not in rewards: add it or drop the flag")

    def trl_fixed(self) -> dict:
        """r1 align orders the prompts itself (`mix`), so TRL's shuffle is off."""
        return {**super().trl_fixed(), "shuffle_dataset": False}


@dataclass
class ReadabilityConfig(Section):
    """`r1 reject-sample`'s readability filters on the CoT; null (or false) turns one off."""

    # min share of target-language words in the CoT (the `language` reward); below it: mixed_language
    mixed_language: float | None = setting(0.95, ge=0, le=1)
    # a CoT paragraph (text between blank lines) longer than this: long_paragraph
    max_paragraph_chars: int | None = setting(2000, ge=1)
    # a fenced code block (```) inside the CoT: code_in_cot
    code_in_cot: bool = True
    # the `repetition` reward (0 = no repeated n-grams, -1 = all repeated) below this: repetition
    min_repetition: float | None = setting(-0.3, ge=-1, le=0)
    # CoT length bounds in characters: too_short / too_long
    min_reasoning_chars: int | None = setting(1, ge=0)
    max_reasoning_chars: int | None = setting(None, ge=1)
    # a completion that hit max_new_tokens (cut off mid-thought): truncated
    truncated: bool = True
    # a summary (the reply after </think>) shorter than this many characters: missing_summary.
    # null turns the filter off, but an empty summary is still rejected (as format: R1 rows need one)
    min_summary_chars: int | None = setting(1, ge=0)


@dataclass
class JudgeConfig(HTTPSettings):
    """The generative judge: a local model dir or an OpenAI-compatible endpoint returns
    {"analysis": ..., "correctness": true|false} for (question, reference, response)."""

    # a local model dir (same as --judge) or an endpoint (same as --judge-url), e.g. http://host:8000/v1
    model_dir: str | None = None
    url: str | None = None
    # the `model` field sent to the endpoint (a vllm server's --served-model-name)
    served_model: str = "judge"
    # name of an environment variable holding the endpoint's API key (sent as a Bearer token)
    api_key_env: str | None = None
    # the judge's instructions with {question}, {reference}, {response}; null = r1cli/generation/judge.py's
    prompt: str | None = None
    max_new_tokens: int = setting(512, ge=1)
    # local: prompts per generate() call
    batch_size: int = setting(16, ge=1)

    def check(self) -> None:
        needs("judge.prompt", self.prompt, "{question}", "{reference}", "{response}")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ConfigError("--judge-url", "must start with http:// or https:// (e.g. http://localhost:8000/v1)", self.url)
        if self.model_dir and self.url:
            raise UserError("give one judge: --judge MODEL_DIR (a local model) or --judge-url URL (an endpoint), not both")


@dataclass
class RejectSampleConfig(ToolSettings):
    """`r1 reject-sample`: sample n per prompt, keep the verified and readable ones as SFT rows."""

    seed: int = 0
    # reasoning: verify answers; general: write a CoT for (prompt, reference reply) pairs
    mode: Literal["reasoning", "general"] = "reasoning"
    # samples per prompt
    n: int = setting(8, ge=1)
    # all-correct: every accepted sample; best: the shortest accepted one; first: the lowest sample index
    keep: Literal["all-correct", "best", "first"] = "all-correct"
    # drop a sample whose reply is identical to an accepted one of the same prompt
    dedupe: bool = True
    # prompts per chunk: the unit that is written atomically, resumed and sharded (keep it equal across shards)
    chunk_size: int = setting(256, ge=1)
    backend: Literal["transformers", "vllm"] = "transformers"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # None = detect whether the chat template pre-fills <think>
    prefilled_think: bool | None = None
    # domain -> rule verifier (accuracy | code); other domains (and a rule's None) go to verifier_general
    verifiers: dict[str, str] = field(default_factory=lambda: {"math": "accuracy", "logic": "accuracy", "code": "code"})
    # judge: the generative judge; rule: the summary equals the reference after normalization
    verifier_general: Literal["judge", "rule"] = "judge"
    # options for the reward factories (e.g. the code reward's timeouts)
    reward_options: dict = field(default_factory=dict)
    filters: ReadabilityConfig = field(default_factory=ReadabilityConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    # --few-shot FILE: this many of its examples go before each prompt as earlier turns
    few_shot: int = setting(2, ge=0)
    # general mode: the user turn the model sees ({prompt}: the question, {reply}: the reference)
    general_template: str = "{prompt}"
    # general mode: start the assistant turn with "<think>\n" so the model writes a CoT
    general_prefill_think: bool = True
    # general mode: keep a CoT when the reply the model writes after it agrees with the reference (summary, by
    # verifier_general), or when it passes the filters (the paper's V3 path: a CoT for the data's own reply)
    general_check: Literal["summary", "filters"] = "summary"
    # general mode: a prompt is trivial (reply kept, no CoT) when at most this long and matching a pattern
    trivial_max_chars: int = setting(32, ge=0)
    trivial_patterns: list[str] = field(default_factory=lambda: [
        r"^(hi|hello|hey|good (morning|afternoon|evening|night)|thanks|thank you|bye|goodbye|how are you)\b",
        r"^(你好|您好|早上好|下午好|晚上好|谢谢|再见|拜拜)"])
    # only the first N prompts of --data (null = all)
    limit: int | None = setting(None, ge=1)
    # leave out (and count) the prompts that leave fewer than sampling.max_new_tokens of the model's
    # context, instead of refusing them (r1cli/generation/lengths.py)
    drop_long_prompts: bool = False
    # --num-shards / --shard-index: this job takes chunks c with c % num_shards == shard_index
    num_shards: int = setting(1, ge=1)
    shard_index: int = setting(0, ge=0)

    def check(self) -> None:
        super().check()
        if self.shard_index >= self.num_shards:
            raise ConfigError("shard_index", f"must be in 0..{self.num_shards - 1} for num_shards {self.num_shards}",
                              self.shard_index)
        for domain, name in self.verifiers.items():
            if name not in VERIFIERS:
                raise ConfigError(f"verifiers.{domain}", f"must be one of {', '.join(VERIFIERS)}", name)
        if self.mode == "general":
            needs("general_template", self.general_template, "{prompt}")
        for i, pattern in enumerate(self.trivial_patterns):
            try:
                re.compile(pattern)
            except re.error as e:
                raise ConfigError(f"trivial_patterns[{i}]", f"is not a regular expression ({e})", pattern) from None


STAGES: dict[str, type] = {
    "toy-data": ToyDataConfig,
    "toy-base": ToyBaseConfig,
    "eval": EvalConfig,
    "score": ScoreConfig,
    "coldstart": SFTStageConfig,
    "sft": SFTStageConfig,
    "grpo": GRPOStageConfig,
    "rm": RMConfig,
    "align": AlignConfig,
    "reject-sample": RejectSampleConfig,
}
