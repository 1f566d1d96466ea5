"""The typed config of every stage: what a recipe YAML may set.

Each stage has one dataclass; shared parts (sampling) are composed, never copied. A
class with `TRL_CONFIG` gets a `trl:` section passed through to that TRL config class.
`STAGES` maps the stage name (the recipe's optional `stage:` key) to its class; the
recipe test validates every file under recipes/ against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal


@dataclass
class SamplingConfig:
    """How completions are drawn (paper's eval setting: T=0.6, top-p 0.95)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 256
    # prompts per generate() call (each expanded to n samples)
    batch_size: int = 32


@dataclass
class ToyDataConfig:
    """`r1 toy data`: the synthetic task world (see r1cli/data/toy.py)."""

    seed: int = 0
    n_rl: int = 4000
    n_coldstart: int = 3000
    n_eval: int = 500
    n_general: int = 600
    # held-out general + harmful prompts (disjoint from `general`)
    n_general_eval: int = 200
    n_helpful_pairs: int = 1200
    n_safety: int = 1200
    # share of prompts written in Chinese
    zh_fraction: float = 0.5
    # share of CoT digits corrupted in the cold-start set (an imperfect cold start, like a real one)
    coldstart_corruption: float = 0.08
    # share of Chinese cold-start samples whose CoT is (partly) English: real cold-start data is not clean.
    # Measured (seed 0, 500 eval prompts): at 0.3 the cold start reasons in Chinese on 87.5% of Chinese
    # prompts; stage-2 RL with the language reward takes that to 99.9%, without it down to 56.8% (RL
    # drifts to English, pass@1 88.7% vs 87.8%: the paper's trade-off). At 0.1 both ended >= 99.5%.
    coldstart_language_mix: float = 0.3


@dataclass
class ToyBaseConfig:
    """`r1 toy base`: tokenizer + tiny Qwen2 trained from scratch on a toy corpus."""

    seed: int = 0
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    # pretraining sequence length (documents are packed into rows of this many tokens)
    max_length: int = 256
    # one pass over steps x batch_size x max_length fresh corpus tokens; many small steps learn
    # the arithmetic facts far faster than few big ones for the same tokens (measured); copying a
    # problem's operands appears between 1.2M and 2.4M tokens (toy_corpus.MIX)
    steps: int = 4800
    batch_size: int = 2
    learning_rate: float = 3e-3
    # greedy zero-shot check on this many eval prompts at the end (0 = skip)
    eval_prompts: int = 200


@dataclass
class EvalConfig:
    """`r1 eval`: pass@1 over k samples, cons@k, format and language rates."""

    seed: int = 0
    k: int = 4
    template: Literal["r1", "r1zero"] = "r1"
    r1zero_template: str | None = None
    backend: Literal["transformers", "vllm"] = "transformers"
    # a CoT counts as language-consistent when this share of its words is the target language
    language_threshold: float = 0.95
    limit: int | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class ScoreConfig:
    """`r1 score`: reward columns for a dataset of completions."""

    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})
    # options passed to every reward factory (timeout, max_completion_len for overlong, ...)
    reward_options: dict = field(default_factory=dict)
    # what `format` checks: r1 (<think>\n...\n</think>\n + summary) or r1zero (<think> + <answer> tags)
    template: Literal["r1", "r1zero"] = "r1"
    # math-verify worker processes (None = one per core, up to 4)
    workers: int | None = None
    # the completions were generated after a chat template that pre-fills <think>
    prefilled_think: bool = False
    helpful_rm: str | None = None
    harmless_rm: str | None = None
    # rows per reward call (a prompt's completions stay in one call, for the group-wise `length`)
    batch_size: int = 512


@dataclass
class SFTStageConfig:
    """`r1 coldstart` / `r1 sft`: long-CoT SFT with TRL's SFTTrainer."""

    TRL_CONFIG: ClassVar[str] = "SFTConfig"
    seed: int = 42
    # mixing weights, one per --data (None = concatenate as they are)
    data_weights: list[float] | None = None
    # a Jinja chat template to use when the tokenizer has none (or strips <think>)
    chat_template: str | None = None
    # with --eval-data: how the input and the trained model are evaluated (before/after)
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(k=1, limit=200))
    trl: dict = field(default_factory=dict)


@dataclass
class GRPOStageConfig:
    """`r1 grpo`: R1-Zero and stage-2 reasoning RL with TRL's GRPOTrainer."""

    TRL_CONFIG: ClassVar[str] = "GRPOConfig"
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
    # write a few prompts + completions + rewards to samples.jsonl every N steps (0 = never)
    samples_every: int = 10
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(k=4, limit=None))
    trl: dict = field(default_factory=dict)


@dataclass
class RMConfig:
    """`r1 rm`: a reward model for `r1 align` (a sequence-classification head on a causal LM).

    Pairwise (helpfulness, Bradley-Terry on prompt/chosen/rejected) with TRL's RewardTrainer;
    pointwise (harmlessness, BCE on prompt/completion/label) with a small transformers Trainer.
    """

    TRL_CONFIG: ClassVar[str] = "RewardConfig"
    seed: int = 42
    # train on safe/unsafe labels instead of preference pairs (same as --pointwise)
    pointwise: bool = False
    # share of rows held out for the accuracy in the manifest (0 = none)
    eval_fraction: float = 0.1
    trl: dict = field(default_factory=dict)


@dataclass
class AlignConfig(GRPOStageConfig):
    """`r1 align`: stage-4 all-scenario RL, the `r1 grpo` fields plus reward routing by domain.

    Reasoning rows get the rule rewards, general rows the reward-model rewards; every reward
    returns None where it does not apply, so `rewards` lists them all.
    """

    rewards: dict[str, float] = field(default_factory=lambda: {
        "accuracy": 1.0, "format": 1.0, "language": 1.0, "helpfulness": 1.0, "harmlessness": 1.0})
    # reward-model dirs (same as --helpful-rm / --harmless-rm)
    helpful_rm: str | None = None
    harmless_rm: str | None = None
    # the rewards that score general rows; every other reward returns None on them (paper: rule rewards
    # for reasoning data, reward models for general data, the language reward for all)
    general_rewards: list[str] = field(default_factory=lambda: ["helpfulness", "harmlessness", "language"])
    # mixed: reasoning and general prompts in every batch; alternate: reasoning-only and general-only batches
    mix: Literal["mixed", "alternate"] = "mixed"
    # share of general prompts in the prompt stream (None = their share of the --data rows); when only
    # the RMs score general rows, general prompts join the stream when the RMs start
    general_fraction: float | None = None
    # the preference rewards apply from this step (>= 1) or this fraction of max_steps (< 1); before
    # it they return None. Paper: the last 400 of 1,700 steps only (longer use led to reward hacking)
    preference_rewards_from: float = 1300 / 1700
    # raw RM logit -> reward: sigmoid (0..1, like the rule rewards), none, running (z-score over the
    # scores seen so far), fixed (z-score with the mean/std `r1 rm` measured on its held-out rows)
    rm_normalization: Literal["sigmoid", "none", "running", "fixed"] = "sigmoid"
    # completions per RM forward pass
    rm_batch_size: int = 16


@dataclass
class ReadabilityConfig:
    """`r1 reject-sample`'s readability filters on the CoT; null (or false) turns one off."""

    # min share of target-language words in the CoT (the `language` reward); below it: mixed_language
    mixed_language: float | None = 0.95
    # a CoT paragraph (text between blank lines) longer than this: long_paragraph
    max_paragraph_chars: int | None = 2000
    # a fenced code block (```) inside the CoT: code_in_cot
    code_in_cot: bool = True
    # the `repetition` reward (0 = no repeated n-grams, -1 = all repeated) below this: repetition
    min_repetition: float | None = -0.3
    # CoT length bounds in characters: too_short / too_long
    min_reasoning_chars: int | None = 1
    max_reasoning_chars: int | None = None
    # a completion that hit max_new_tokens (cut off mid-thought): truncated
    truncated: bool = True
    # a summary (the reply after </think>) shorter than this many characters: missing_summary.
    # null turns the filter off, but an empty summary is still rejected (as format: R1 rows need one)
    min_summary_chars: int | None = 1


@dataclass
class JudgeConfig:
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
    max_new_tokens: int = 512
    # HTTP: requests in flight, retries after a timeout / 429 / 5xx (backoff_s doubling each time)
    concurrency: int = 8
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 120.0
    # local: prompts per generate() call
    batch_size: int = 16


@dataclass
class RejectSampleConfig:
    """`r1 reject-sample`: sample n per prompt, keep the verified and readable ones as SFT rows."""

    seed: int = 0
    # reasoning: verify answers; general: write a CoT for (prompt, reference reply) pairs
    mode: Literal["reasoning", "general"] = "reasoning"
    # samples per prompt
    n: int = 8
    # all-correct: every accepted sample; best: the shortest accepted one; first: the lowest sample index
    keep: Literal["all-correct", "best", "first"] = "all-correct"
    # drop a sample whose reply is identical to an accepted one of the same prompt
    dedupe: bool = True
    # prompts per chunk: the unit that is written atomically, resumed and sharded (keep it equal across shards)
    chunk_size: int = 256
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
    few_shot: int = 2
    # general mode: the user turn the model sees ({prompt}: the question, {reply}: the reference)
    general_template: str = "{prompt}"
    # general mode: start the assistant turn with "<think>\n" so the model writes a CoT
    general_prefill_think: bool = True
    # general mode: a prompt is trivial (reply kept, no CoT) when at most this long and matching a pattern
    trivial_max_chars: int = 32
    trivial_patterns: list[str] = field(default_factory=lambda: [
        r"^(hi|hello|hey|good (morning|afternoon|evening|night)|thanks|thank you|bye|goodbye|how are you)\b",
        r"^(你好|您好|早上好|下午好|晚上好|谢谢|再见|拜拜)"])
    # only the first N prompts of --data (null = all)
    limit: int | None = None
    # --num-shards / --shard-index: this job takes chunks c with c % num_shards == shard_index
    num_shards: int = 1
    shard_index: int = 0


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
