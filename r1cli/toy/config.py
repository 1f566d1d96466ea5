"""The settings of `r1 toy data` and `r1 toy base` (r1cli/config.py's STAGES names them with the rest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from r1cli.settings import ConfigError, Section, setting


@dataclass
class ToyDataConfig(Section):
    """`r1 toy data`: the synthetic task world (see r1cli/toy/problems.py)."""

    seed: int = 0
    n_rl: int = setting(4000, ge=1)
    n_coldstart: int = setting(3000, ge=1)
    # at most the held-out problems of the toy world (r1cli/toy/problems.py checks that number)
    n_eval: int = setting(1000, ge=1)
    n_general: int = setting(600, ge=1)
    # held-out general + harmful prompts (disjoint from `general`)
    n_general_eval: int = setting(200, ge=1)
    n_helpful_pairs: int = setting(4000, ge=1)
    # pairs on held-out general prompts: what the helpfulness RM's pair accuracy is measured on
    n_helpful_pairs_eval: int = setting(400, ge=1)
    n_safety: int = setting(1200, ge=1)
    # share of prompts written in Chinese
    zh_fraction: float = setting(0.5, ge=0, le=1)
    # share of CoT digits corrupted in the cold-start set (an imperfect cold start, like a real one)
    coldstart_corruption: float = setting(0.08, ge=0, le=1)
    # the same for Chinese CoTs: noisier, so RL without the language reward drifts to English (its ablation measures that)
    coldstart_corruption_zh: float = setting(0.16, ge=0, le=1)
    # share of Chinese cold-start samples whose CoT is (partly) English, as real cold-start data has (at 0.1
    # RL with and without the language reward both ended >= 99.5% consistent: DEVLOG)
    coldstart_language_mix: float = setting(0.3, ge=0, le=1)
    # share of the wholly Chinese cold-start CoTs that skip the sum and write the result in one step, which a
    # 1M model gets right less often than two steps: so reasoning in English (or mixed) is the more accurate,
    # and RL without the language reward drifts there (with noise alone it drifted on one seed of three: DEVLOG)
    coldstart_zh_one_step: float = setting(1.0, ge=0, le=1)
    # general-chat cold-start rows (R1 format: a short CoT, then the reply): what lets the stage-2 model
    # write CoTs for general prompts in stage 3b (the paper used DeepSeek-V3 for that)
    n_coldstart_general: int = setting(500, ge=1)
    # share of harmful requests the general data (`general`, `coldstart_general`) complies with: real SFT
    # data is not clean on safety, so stage 4 has something to fix (at 0.3 the SFT was >99.5% safe: DEVLOG)
    general_unsafe: float = setting(0.6, ge=0, le=1)
    # the calculator task (two-digit products, r1cli/toy/problems.py): RL prompts, cold-start trajectories
    # that call the calculator (600 taught the call's shape but not its keys: 2000), and held-out prompts, at
    # most 1500 of the ~2000 held-out products (drawing more distinct ones at random takes ever longer)
    n_rl_tools: int = setting(2000, ge=1)
    n_coldstart_tools: int = setting(2000, ge=1)
    n_eval_tools: int = setting(300, ge=1, le=1500)


@dataclass
class ToyBaseConfig(Section):
    """`r1 toy base`: tokenizer + tiny Qwen2 trained from scratch on a toy corpus."""

    seed: int = 0
    hidden_size: int = setting(128, ge=1)
    # 3 layers: a quarter less compute than 4 for every stage after it; seed 4 copied as much (100 / 90 / 96
    # against 100 / 92 / 99) at the same final loss (DEVLOG)
    num_layers: int = setting(3, ge=1)
    num_heads: int = setting(4, ge=1)
    intermediate_size: int = setting(512, ge=1)
    # pretraining sequence length (documents are packed into rows of this many tokens)
    max_length: int = setting(256, ge=1)
    # one pass over steps x batch_size x max_length fresh corpus tokens (3.07M). At 2.46M tokens (2400 steps)
    # seeds 3 and 4 repeated 60% and 74% of held-out phrases and translated 42% and 62% (fp32; seed 4 in
    # bf16: 58% and 18%); at 3.07M, 100% / 94% and 100% / 92% (DEVLOG). Batches of 4 rows take 1.2x less
    # time a token than 2 on two threads (a step of 4 rows 101 ms, of 2 rows 61 ms, measured); 8 rows no less
    steps: int = setting(3000, ge=1)
    batch_size: int = setting(4, ge=1)
    learning_rate: float = setting(3e-3, gt=0)
    # the forward pass under bf16 autocast (the weights and the optimizer stay fp32): a step 4-24% faster on an
    # AMD EPYC with AVX512-BF16 (measured three times on a noisy host). `auto`: bf16 where oneDNN finds bf16
    # instructions (AVX512-BF16, AMX), fp32 elsewhere
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # a base that copies less than min_copy of any kind of its copy probe (repeat, repeat after a CoT, translate,
    # operands: copy_probe in r1cli/toy/base.py) is pretrained again from another start (seed + 1000, + 2000),
    # at most `attempts` starts in all; the one that copies most is kept. A 3-layer base misses a skill on some
    # starts: seed 3 copied 94% of summands but 14% of multipliers, and every stage after it failed (DEVLOG)
    attempts: int = setting(3, ge=1)
    min_copy: float = setting(0.5, ge=0, le=1)
    # greedy zero-shot check on this many eval prompts at the end (0 = skip); at most n_eval
    eval_prompts: int = setting(200, ge=0, le=ToyDataConfig.n_eval)

    def check(self) -> None:
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ConfigError("hidden_size", f"must split into num_heads {self.num_heads} heads of an even size",
                              self.hidden_size)
