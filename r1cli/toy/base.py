"""`r1 toy base OUT`: a word-level tokenizer and a tiny Llama trained from scratch, the
"pretrained base model" of the toy world (about three and a half minutes on 2 quiet CPU cores).

    r1 toy base runs/demo/base --seed 0

OUT is an ordinary HF checkpoint dir (AutoModelForCausalLM / AutoTokenizer load it, and
`apply_chat_template` works) plus metrics.jsonl (the loss curve) and the manifest, whose
metrics hold the copy probe (can the base copy a phrase, a word to translate, a problem's
operands?) and, with eval_prompts, the zero-shot accuracy and format rates.

Why by hand: the tokenizer is the `tokenizers` library's BPE learned from the toy world with
pieces that keep a word whole (so a word is one token and copying it is copying one token; a
character tokenizer left the base unable to copy words on any seed), and pretraining is a
plain torch loop over packed sequences (Trainer adds nothing for a few thousand steps of next-token
loss). The traps TOY-NOTES.md records are handled here:
- one token per digit, the same token after a space or not, and `decoders.Fuse()` so that decode
  does not put spaces between pieces (every exact-match reward would fail);
- `<think>`, `</think>`, `<answer>`, `</answer>`, `<tool_call>`, `</tool_call>` are added tokens
  that are NOT special: TRL decodes completions with skip_special_tokens=True and special ones would vanish;
- BPE keeps every character as a token, so a word the vocabulary lacks still encodes (no `<unk>`);
- the chat template's generation prompt does not pre-fill `<think>`: the model must choose to
  reason, which is the behaviour RL reinforces.
"""

from __future__ import annotations

import math
import random
import string
import time

from r1cli.config import SamplingConfig
from r1cli.toy.config import ToyBaseConfig
from r1cli.generation import load_generator
from r1cli.templates import REASONING_TOKENS, extract_answer, is_r1_format, is_r1zero_format
from r1cli.toy import corpus as toy_corpus
from r1cli.toy import general
from r1cli.toy import problems as toy
from r1cli.tools import CALL_END, CALL_START

END = toy_corpus.END
# `<|tool|>` opens a tool result's turn, a role marker like `<|user|>`
SPECIAL_TOKENS = ["<pad>", "<unk>", END, "<|user|>", "<|assistant|>", "<|system|>", "<|tool|>"]

# One turn is `<|role|>{content}<|end|>`; the generation prompt is `<|assistant|>` and nothing
# more (no `<think>`). `{% generation %}` marks the assistant's tokens for TRL's
# assistant-only loss (return_assistant_tokens_mask), its tool calls included.
# Structured `tool_calls` (TRL's format) become Hermes calls, the text r1cli.tools parses, each on lines of
# its own as Qwen2.5 writes them (so a structured call renders as the raw calls of the cold-start rows);
# transformers' `tojson` is json.dumps, so the JSON reads as `json.dumps({"name": ..., "arguments": ...})`.
# The `tools=` list is not rendered: the toy world has one tool, and the model learns when to call it from
# its cold-start trajectories, so a prompt renders the same with or without tools.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "<|assistant|>{% generation %}{{ message['content'] }}"
    "{%- for call in message['tool_calls'] or [] -%}"
    "{%- if message['content'] or not loop.first -%}{{ '\n' }}{%- endif -%}"
    "<tool_call>\n{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}\n</tool_call>"
    "{%- endfor -%}"
    "<|end|>{% endgeneration %}"
    "{%- elif message['role'] in ['user', 'system', 'tool'] -%}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{%- else -%}{{ raise_exception('unknown role: ' ~ message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


# How transformers' `parse_response` reads a reply of this template (TRL's own tool loop, with vLLM, parses
# each reply with it and renders the conversation again): the text before the first `<tool_call>` is the
# content (CoT included, so the render gives back the same text), each call a JSON object, `<|end|>` the end.
# TRL sets such a template itself only for chat templates it knows (Qwen, Llama 3, ...).
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|assistant|>",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True, "content": "json",
                       "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|end\|>\s*", "content": "text"},
    },
}


# --- tokenizer ------------------------------------------------------------------------------------


# An English word keeps its leading space; each digit, CJK character, punctuation mark and space is a
# piece of its own. BPE merges only inside a piece, so every word of the toy world becomes one token while
# "3" is always the same token (a space glued to digits would make "3" and " 3" two tokens, which works
# against copying operands).
PIECES = r" ?[A-Za-z]+|\d|\s|[^\sA-Za-z\d]"
# more than the toy world has words: BPE stops when nothing is left to merge (917 tokens today)
VOCAB_SIZE = 1200
# the corpus documents the vocabulary is learned from (the same for every seed: one tokenizer for the world)
TOKENIZER_DOCS = 20000
# calculator-task trajectories (the pretraining corpus has none): they make `name`, `arguments`,
# `expression`, `calculator` single tokens, so a call is a few dozen tokens (digits stay one token each)
TOKENIZER_TOOL_ROWS = 300


def tokenizer_texts() -> list[str]:
    """What the vocabulary is learned from: a fixed sample of the corpus, every general item's texts and
    a fixed sample of calculator-task trajectories."""
    import itertools

    docs = list(itertools.islice(toy_corpus.documents(-1), TOKENIZER_DOCS))
    items = ["\n".join((it.prompt, *it.replies, it.wrong, it.other_language, it.thought)) for it in general.ITEMS]
    tool_rows = toy.coldstart_tool_rows(random.Random("tokenizer"), TOKENIZER_TOOL_ROWS, zh_fraction=0.5)
    tools = ["\n".join(m["content"] for m in row["messages"]) for row in tool_rows]
    return docs + items + [*general.DISMISSIVE["en"], *general.DISMISSIVE["zh"], *general.COMPLY_COT.values()] + tools


def build_tokenizer(max_length: int = 512):
    """A word-level (BPE) PreTrainedTokenizerFast learned from the toy world: a word is one token, so
    copying a word is copying one token; any other text still encodes, character by character."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    chars = sorted((set(string.printable) - set("\t\r\x0b\x0c")) | set(toy.alphabet()))
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(PIECES), "isolated")
    tk.decoder = decoders.Fuse()  # join the pieces back with nothing in between
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tk.add_tokens([AddedToken(t, special=False, normalized=False) for t in (*REASONING_TOKENS, CALL_START, CALL_END)])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, initial_alphabet=chars,
                                  show_progress=False)  # no limit_alphabet: it dropped rare characters (问, 题, 解)
    tk.train_from_iterator(tokenizer_texts(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=END, pad_token="<pad>", unk_token="<unk>",
                                        chat_template=CHAT_TEMPLATE, model_max_length=max_length, padding_side="left")
    tokenizer.response_template = RESPONSE_TEMPLATE  # saved with the tokenizer
    return tokenizer


# --- model ----------------------------------------------------------------------------------------


def build_model(cfg: ToyBaseConfig, tokenizer):
    # Llama, not Qwen2: transformers 5 loads a "qwen2" checkpoint's tokenizer as Qwen2Tokenizer,
    # which replaces our pre-tokenizer with Qwen's byte-level one and silently drops every space
    # and newline at encode time (so no completion can ever match the R1 format). A "llama"
    # checkpoint keeps the tokenizer.json as saved (TokenizersBackend).
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        head_dim=cfg.hidden_size // cfg.num_heads, max_position_embeddings=max(512, cfg.max_length), tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return model


# --- pretraining ----------------------------------------------------------------------------------


def packed_corpus(tokenizer, seed: int, rows: int, length: int):
    """`rows` x `length` token ids: documents from toy_corpus, concatenated and cut (GPT-style
    packing: no padding, and a document may continue into the next row)."""
    import torch

    need, ids = rows * length, []
    docs = toy_corpus.documents(seed)
    while len(ids) < need:
        batch = [next(docs) for _ in range(512)]
        for x in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            ids.extend(x)
    return torch.tensor(ids[:need], dtype=torch.long).view(rows, length)


def lr_at(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over 5% of the steps, cosine down to 10% of the peak."""
    warm = max(1, steps // 20)
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def use_bf16(precision: str) -> bool:
    """Whether pretraining runs under bf16 autocast: `auto` asks oneDNN whether this CPU has bf16 instructions."""
    import torch

    return precision == "bf16" or (precision == "auto" and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pretrain(model, data, cfg: ToyBaseConfig, log) -> float:
    """Next-token loss over the packed corpus, one pass, in a fixed order, the forward pass in bf16 when
    `use_bf16(cfg.precision)`; returns the final loss (mean of the last 10 steps)."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    recent: list[float] = []
    bf16 = use_bf16(cfg.precision)
    t0 = time.time()
    with Progress(TextColumn("[bold]pretraining"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task("pretrain", total=cfg.steps, info="")
        for step in range(cfg.steps):
            lr = lr_at(step, cfg.steps, cfg.learning_rate)
            for group in opt.param_groups:
                group["lr"] = lr
            x = data[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            recent = (recent + [loss.item()])[-10:]
            if step % 10 == 0 or step == cfg.steps - 1:
                log({"step": step + 1, "loss": round(recent[-1], 4), "lr": lr, "time_s": round(time.time() - t0, 2)})
            bar.update(task, advance=1, info=f"loss {recent[-1]:.3f}")
    model.eval()
    return sum(recent) / len(recent)


# --- zero-shot check ------------------------------------------------------------------------------


def zero_shot(model, tokenizer, seed: int, n: int, max_new_tokens: int = 96) -> dict:
    """Greedy accuracy and format rate on the first n prompts of `r1 toy data --seed SEED`'s
    eval split, with the chat template (R1 format) and with TOY_R1ZERO_TEMPLATE."""
    rows = toy.eval_rows(seed, n)
    gen = load_generator((model, tokenizer))
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=64)
    out = {}
    for name, prompts, is_format in (
        ("r1", [r["prompt"] for r in rows], is_r1_format),
        ("r1zero", [toy.TOY_R1ZERO_TEMPLATE.format(prompt=r["prompt"][-1]["content"]) for r in rows], is_r1zero_format),
    ):
        texts = [c[0].text for c in gen.generate(prompts, greedy)]
        correct = [extract_answer(t) == r["answer"] for t, r in zip(texts, rows)]
        out[f"zero_shot_{name}_accuracy"] = round(sum(correct) / len(rows), 4)
        out[f"zero_shot_{name}_format_rate"] = round(sum(map(is_format, texts)) / len(rows), 4)
    out["zero_shot_prompts"] = len(rows)
    return out


# --- copying probe --------------------------------------------------------------------------------

# what the probe asks (held-out prompts only): `repeat` a phrase ("Repeat after me: white car"),
# `translate` a word, and continue a worked problem ("Q: What is (3+4)*5?\nA:"), whose working
# must start from the problem's two operands


def copy_probe(model, tokenizer, n: int = 100, max_new_tokens: int = 32) -> dict:
    """Greedy share of held-out prompts (n of each kind at most) whose reply copies what it must:
    `copy_repeat` (the reply is the phrase), `copy_repeat_cot` (the same, written after the request's
    CoT, as the stage-3 SFT must), `copy_translate` (the reply is the reference, so the word asked about
    is in it) and `copy_operands` (the working starts from the problem's two summands and multiplies
    by its multiplier). What every later stage builds on, measured the same way for every seed."""
    import re

    from r1cli.generation import render_prompt
    from r1cli.rejection.filters import parse, same_reply

    gen = load_generator((model, tokenizer))
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=64)
    out = {}
    for name, kind in (("repeat", "repeat"), ("translate", "translate"), ("repeat_cot", "repeat")):
        items = [it for it in general.ITEMS if it.kind == kind and general.eval_side(it.prompt)][:n]
        # repeat_cot: the reply written after the request's CoT, pre-filled, as stage 3's rows put it
        heads = [f"<think>\n{it.thought}\n</think>\n" if name == "repeat_cot" else "" for it in items]
        prompts = [render_prompt(tokenizer, general.chat(it.prompt)) + h if h else general.chat(it.prompt)
                   for it, h in zip(items, heads)]
        texts = [h + c[0].text for h, c in zip(heads, gen.generate(prompts, greedy))]
        out[f"copy_{name}"] = round(sum(same_reply(parse(t).summary, it.replies[0]) for t, it in zip(texts, items)) / len(items), 4)
    rng = random.Random("copy-probe")
    problems = [toy.ordered(p, rng) for p in rng.sample(toy.problems(True), n)]
    prompts = []
    for i, (a, b, c) in enumerate(problems):
        lang = "en" if i % 2 else "zh"
        q = toy.question(a, b, c, lang, rng)
        prompts.append(f"Q: {q}\nA:" if lang == "en" else f"问题：{q}\n解答：")
    texts = [c[0].text for c in gen.generate(prompts, greedy)]
    nums = [[int(x) for x in re.findall(r"\d+", t)] for t in texts]
    # the first two numbers are the summands; the multiplier comes before the result ("11+10=21. 21*7=147",
    # "11加10乘7等于147"): a base that copied the summands only guessed it (seed 3: 94% of summands, 14% of both)
    hits = sum(sorted(n[:2]) == sorted((a, b)) and c in n[2:5] for n, (a, b, c) in zip(nums, problems))
    out["copy_operands"] = round(hits / len(problems), 4)
    return out
