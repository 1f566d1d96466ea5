"""Readability filters and reply rules for `r1 reject-sample` (stage 3 of DeepSeek-R1).

    r1 reject-sample --model CKPT --data PROMPTS --out SFT_DS --recipe recipes/toy/reject_sample.yaml

The paper keeps only rejection-sampled CoTs a person can read: no mixed languages, no
endless paragraphs, no code blocks inside the reasoning. Each filter here is one line of
`filters:` in the recipe (ReadabilityConfig) and, when a sample fails it, one rejection
reason in the output's manifest. They run in a fixed order (cheap ones first) and the first
that fails names the reason:

    truncated          the completion hit max_new_tokens (cut off mid-thought)
    format             not `<think>\\n...\\n</think>\\n` + summary (no closed CoT, nested tags, ...)
    missing_summary    nothing (or less than min_summary_chars) after `</think>`
    too_short/too_long the CoT's length in characters is outside the bounds
    code_in_cot        a fenced code block (```) inside the CoT
    long_paragraph     a CoT paragraph (text between blank lines) longer than max_paragraph_chars
    mixed_language     the `language` reward (share of target-language words in the CoT) is
                       below the threshold; a CoT with no words at all (only math) passes
    repetition         the `repetition` reward (n-gram repetition of the CoT) is below the bound

Also here: the rule that calls a general prompt trivial (its reply is kept with no CoT, as the
paper does for "hello"), and the normalization the `rule` verifier compares replies with.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from r1cli.config import ReadabilityConfig
from r1cli.errors import UserError
from r1cli.rewards import get_reward
from r1cli.templates import THINK_OPEN, completion_text, is_r1_format, split_completion

_FENCE = re.compile(r"^\s*```", re.M)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


# --- one completion ----------------------------------------------------------------------------


@dataclass
class Parsed:
    """A completion split into its CoT and summary, with the canonical R1 text of the pair."""

    reasoning: str | None
    summary: str
    # `<think>\n{reasoning}\n</think>\n{summary}`, or None when there is no closed CoT
    text: str | None
    # the completion opened its CoT itself (or the template pre-filled the tag)
    opened: bool


def parse(raw: str, prefilled_think: bool = False) -> Parsed:
    """Split a completion. With `prefilled_think` the prompt ended in `<think>`, so the tag
    is missing from the text: it is put back, because the SFT row must hold the whole turn."""
    raw = completion_text(raw)
    opened = raw.lstrip().startswith(THINK_OPEN) or prefilled_think
    if prefilled_think and not raw.lstrip().startswith(THINK_OPEN):
        raw = f"{THINK_OPEN}\n{raw}"
    reasoning, summary = split_completion(raw)
    text = None if reasoning is None else f"{THINK_OPEN}\n{reasoning}\n</think>\n{summary}"
    return Parsed(reasoning, summary, text, opened)


def longest_paragraph(text: str) -> int:
    return max((len(p.strip()) for p in _BLANK_LINE.split(text)), default=0)


def has_code_block(text: str) -> bool:
    return bool(_FENCE.search(text))


def shape_reason(p: Parsed, finish_reason: str, cfg: ReadabilityConfig) -> str | None:
    """The first filter that needs no reward (everything before mixed_language) a sample fails."""
    if cfg.truncated and finish_reason == "length":
        return "truncated"
    if p.reasoning is None or not p.opened or not p.reasoning:
        return "format"
    if cfg.min_summary_chars is not None and len(p.summary) < cfg.min_summary_chars:
        return "missing_summary"
    if not is_r1_format(p.text):
        return "format"
    n = len(p.reasoning)
    if cfg.min_reasoning_chars is not None and n < cfg.min_reasoning_chars:
        return "too_short"
    if cfg.max_reasoning_chars is not None and n > cfg.max_reasoning_chars:
        return "too_long"
    if cfg.code_in_cot and has_code_block(p.reasoning):
        return "code_in_cot"
    if cfg.max_paragraph_chars is not None and longest_paragraph(p.reasoning) > cfg.max_paragraph_chars:
        return "long_paragraph"
    return None


# --- many completions --------------------------------------------------------------------------


def readability_reasons(parsed: list[Parsed], finish_reasons: list[str], prompts: list, languages: list[str | None],
                        cfg: ReadabilityConfig) -> tuple[list[str | None], dict[str, list[float | None]]]:
    """(reason or None per sample, reward values computed: {"language": [...], "repetition": [...]}).

    The two reward-based filters call the registry's `language` and `repetition` rewards once
    over the samples that passed the others (rewards take lists, as TRL calls them). The
    language reward's target is the row's `language`, else detected from the prompt; where it
    does not apply (an unknown language) the filter passes the sample."""

    reasons = [shape_reason(p, f, cfg) for p, f in zip(parsed, finish_reasons)]
    scores: dict[str, list[float | None]] = {}
    checks = [("language", cfg.mixed_language, lambda idx: ([prompts[i] for i in idx], [parsed[i].text for i in idx])),
              # repetition over the CoT only: a summary may well restate it
              ("repetition", cfg.min_repetition, lambda idx: ([prompts[i] for i in idx], [parsed[i].reasoning for i in idx]))]
    for name, bound, args in checks:
        if bound is None:
            continue
        todo = [i for i, r in enumerate(reasons) if r is None]
        values: list[float | None] = [None] * len(parsed)
        if todo:
            got = get_reward(name)(*args(todo), language=[languages[i] for i in todo])
            for i, v in zip(todo, got):
                values[i] = None if v is None else float(v)
                if v is not None and v < bound:
                    reasons[i] = "mixed_language" if name == "language" else "repetition"
        scores[name] = values
    return reasons, scores


# --- general prompts ----------------------------------------------------------------------------


def compile_patterns(patterns: list[str]) -> list[re.Pattern]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.I))
        except re.error as e:
            raise UserError(f"trivial_patterns: {p!r} is not a valid regular expression ({e}): fix it in the recipe") from None
    return out


def is_trivial(prompt: str, max_chars: int, patterns: list[re.Pattern]) -> bool:
    """Short and greeting-like ("hello", "thanks", "你好"): the reply needs no CoT."""
    text = prompt.strip()
    return 0 < len(text) <= max_chars and any(p.search(text) for p in patterns)


def normalize_reply(text: str) -> str:
    """What the `rule` verifier compares: NFKC, case-folded, without punctuation, symbols
    other than math ones, or whitespace ("“猫”的英文是“cat”。" == '"猫"的英文是"Cat"')."""
    text = unicodedata.normalize("NFKC", text).casefold()
    keep = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "PZC" or (cat[0] == "S" and cat != "Sm"):
            continue
        keep.append(ch)
    return "".join(keep)


def same_reply(summary: str, reference: str) -> bool:
    """The rule verifier: the summary says what the reference says, up to normalization."""
    a, b = normalize_reply(summary), normalize_reply(reference)
    return bool(a) and a == b
