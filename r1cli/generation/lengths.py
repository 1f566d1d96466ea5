"""Prompts that leave a completion no room in the model's context: refused, or dropped when asked.

    prompts = [apply_template(r["prompt"], ...) for r in rows]        # what the model is given
    kept, dropped = fit_prompts(prompts, ids, tokenizer, budget=256, context=model_context(model),
                                drop=cfg.drop_long_prompts, budget_name="max_new_tokens",
                                lower="--max-new-tokens {n}", model=model, data=data)
    ds = ds.select(kept)                                                # counts: dropped_long_prompts

A prompt of p tokens fits when p + budget <= context (`max_position_embeddings`). Past that the
transformers backend runs positions the model never saw (the completion is garbage and nothing
fails) and vLLM refuses the request mid-run, so every stage that generates checks first, before
any model loads. Prompts are measured as the backends encode them (render_prompt, then the
tokenizer without special tokens), so the check and the run count the same tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from r1cli.errors import UserError
from r1cli.generation import render_prompt
from r1cli.templates import apply_template

# ids named in the message: enough to find the rows, short enough for one line
_SHOWN = 3
_BATCH = 1000


def model_context(model: str | Path) -> int | None:
    """`max_position_embeddings` of a checkpoint's config.json (a multimodal model keeps it in
    text_config); None when the config does not say."""
    try:
        cfg = json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for section in (cfg, cfg.get("text_config") or {}):
        n = section.get("max_position_embeddings")
        if isinstance(n, int) and n > 0:
            return n
    return None


def load_tokenizer(model: str | Path, what: str = "--model"):
    """The tokenizer of a checkpoint dir (no weights are read); UserError when it does not load."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise UserError(f"{what} {model}: its tokenizer could not be loaded ({first}): give an HF checkpoint dir") from None


def count_tokens(tokenizer, prompts: list) -> list[int]:
    """Tokens of each prompt as a backend encodes it (chat messages through the chat template)."""
    out: list[int] = []
    for start in range(0, len(prompts), _BATCH):
        texts = [render_prompt(tokenizer, p) for p in prompts[start:start + _BATCH]]
        # verbose=False: measuring a prompt longer than model_max_length is the point, not a warning
        out += [len(x) for x in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    return out


def filter_overhead(tokenizer, wrap, template: str = "r1") -> int:
    """Tokens a stage's own wrapping adds to a question (`wrap`: question -> what the model is given, with
    its system prompt, r1zero text or few-shot turns) over what `r1 data filter --template` measures."""
    return count_tokens(tokenizer, [wrap("x")])[0] - count_tokens(tokenizer, [apply_template("x", template)])[0]


def fit_prompts(prompts: list, ids: list, tokenizer, *, budget: int, context: int | None, drop: bool,
                budget_name: str, lower: str, model, data, template: str = "r1",
                filter_overhead: int = 0) -> tuple[list[int], int]:
    """(indices of the prompts that leave `budget` tokens of `context`, how many do not).

    `prompts` are what the model is given, after the template; `ids` name them. A prompt that does
    not fit is a UserError naming how many, the first ids and the remedy, unless `drop`: then it is
    left out and counted. `lower` says how to lower the budget ("--max-new-tokens {n}"); the
    `r1 data filter` command suggested measures with `template` and no system prompt, so
    `filter_overhead` is what the stage's own wrapping adds to each prompt."""
    if not context or not prompts:
        return list(range(len(prompts))), 0
    if budget >= context:
        raise UserError(f"{budget_name}={budget} leaves no room for a prompt in the model's {context}-token context "
                        f"({model}): lower it, e.g. {lower.format(n=context // 2)}")
    room = context - budget
    lengths = count_tokens(tokenizer, prompts)
    over = [i for i, n in enumerate(lengths) if n > room]
    if not over:
        return list(range(len(prompts))), 0
    if len(over) == len(prompts):
        shortest = min(lengths)
        fix = (f"lower {budget_name}: {lower.format(n=context - shortest)} fits the shortest ({shortest} tokens)"
               if shortest < context else "shorten them, or use a model with a longer context")
        raise UserError(f"all {len(prompts)} prompts of {data} leave fewer than {budget_name}={budget} tokens of the "
                        f"model's {context}-token context: {fix}")
    if drop:
        over_set = set(over)
        return [i for i in range(len(prompts)) if i not in over_set], len(over)
    shown = ", ".join(str(ids[i]) for i in over[:_SHOWN]) + (", ..." if len(over) > _SHOWN else "")
    flags = " --template r1zero" if template == "r1zero" else ""
    raise UserError(f"{len(over)} of {len(prompts)} prompts of {data} (ids {shown}) leave fewer than "
                    f"{budget_name}={budget} tokens of the model's {context}-token context (longest "
                    f"{max(lengths)} tokens): leave them out with --set drop_long_prompts=true, or once for all with "
                    f"r1 data filter {data} --max-prompt-tokens {room - filter_overhead} --model {model}{flags} --to OUT")
