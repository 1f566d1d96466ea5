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
    n_helpful_pairs: int = 1200
    n_safety: int = 1200
    # share of prompts written in Chinese
    zh_fraction: float = 0.5
    # share of CoT digits corrupted in the cold-start set (an imperfect cold start, like a real one)
    coldstart_corruption: float = 0.08
    # share of Chinese cold-start samples whose CoT is (partly) English: real cold-start data is not clean
    coldstart_language_mix: float = 0.1


@dataclass
class ToyBaseConfig:
    """`r1 toy base`: tokenizer + tiny Qwen2 trained from scratch on a toy corpus."""

    seed: int = 0
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_length: int = 256
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 2e-3
    corpus_docs: int = 20000


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
    workers: int = 2
    prefilled_think: bool = False
    helpful_rm: str | None = None
    harmless_rm: str | None = None


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


STAGES: dict[str, type] = {
    "toy-data": ToyDataConfig,
    "toy-base": ToyBaseConfig,
    "eval": EvalConfig,
    "score": ScoreConfig,
    "coldstart": SFTStageConfig,
    "sft": SFTStageConfig,
    "grpo": GRPOStageConfig,
}
