"""Rule rewards on the completion's form: format, reasoning_steps, length, cosine, repetition,
overlong. (accuracy is in math.py, language in language.py, code in code.py.)

    r1 score completions.jsonl --rewards format,repetition --out scored
    get_reward("overlong", max_completion_len=256, soft_punish_cache=64)

- `format`: 1 if the completion follows the template, else 0. R1: `<think>\\n...\\n</think>\\n`
  + a non-empty summary; r1zero: `<think>...</think> <answer>...</answer>` (option `template`).
  With `prefilled_think` (the chat template ends the prompt with `<think>`) the completion
  starts inside the reasoning and the opening tag is not expected. Applies to every row.
- `reasoning_steps` (open-r1): step markers in the CoT ("Step 1:", "1.", "- ", "First,", and the
  Chinese 第一步 / 首先 / 然后 / 最后 ...), min(1, count / min_steps).
- `length` (Kimi k1.5, section 2.3.3): within a prompt's group of completions with lengths
  in [min, max], lambda = 0.5 - (len - min) / (max - min); a correct completion gets lambda, a
  wrong one min(0, lambda); 0 when all lengths are equal. Needs correctness: None where
  accuracy is None.
- `cosine` (open-r1's cosine-scaled, from Yeo et al. 2025): correct answers score from
  max_value_correct (short) down to min_value_correct (at max_len); wrong ones from
  min_value_wrong (short) up to max_value_wrong (long: a long wrong answer is less bad).
- `repetition` (open-r1, after Yeo et al.): max_penalty * (1 - distinct n-grams / n-grams) over
  the words of the completion; a CJK character is a word of its own, so Chinese repeats count.
- `overlong` (DAPO's soft overlong punishment): 0 up to max_completion_len - soft_punish_cache
  tokens, then linearly down to -1 at max_completion_len, -1 beyond.

Lengths are tokens: TRL's completion_ids, else a `num_tokens` column (as `r1 eval` writes),
else characters (plain text given to `r1 score`; set max_len / max_completion_len to match).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from r1cli.errors import UserError
from r1cli.rewards import verify
from r1cli.rewards.common import column, group_keys, lengths, reward, texts
from r1cli.rewards.math import check_verify_options, correctness
from r1cli.templates import TEMPLATES, is_r1_format, is_r1zero_format, reasoning_text

# --- format ------------------------------------------------------------------------------------------


def format_reward(template: str = "r1", prefilled_think: bool = False):
    if template not in TEMPLATES:
        raise UserError(f"reward option template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    check = is_r1zero_format if template == "r1zero" else is_r1_format

    @reward("format")
    def format(prompts, completions, completion_ids=None, **columns):  # noqa: A001 (TRL logs rewards/format)
        return [1.0 if check(c, prefilled_think) else 0.0 for c in completions]

    return format


# --- reasoning steps ------------------------------------------------------------------------------------

_STEP = re.compile(r"Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,"
                   r"|第[一二三四五六七八九十\d]+步|首先|其次|然后|接着|最后", re.M)


def reasoning_steps_reward(prefilled_think: bool = False, min_steps: int = 3):
    if not isinstance(min_steps, int) or min_steps < 1:
        raise UserError(f"reward option min_steps must be a whole number >= 1, got {min_steps!r}")

    @reward("reasoning_steps")
    def reasoning_steps(prompts, completions, completion_ids=None, **columns):
        out = []
        for text in texts(completions):
            cot = reasoning_text(text, prefilled_think) or text  # no <think> block: the whole reply
            out.append(min(1.0, len(_STEP.findall(cot)) / min_steps))
        return out

    return reasoning_steps


# --- length-aware rewards that need correctness ----------------------------------------------------------


def _correct(completions, columns, prefilled_think, workers, timeout) -> tuple[list[str], list]:
    n = len(completions)
    txt = texts(completions)
    return txt, correctness(txt, column(columns, "answer", n), column(columns, "domain", n), prefilled_think,
                            workers, timeout)


def length_reward(prefilled_think: bool = False, workers: int | None = None, timeout: float = verify.DEFAULT_DEADLINE):
    check_verify_options(workers, timeout)

    @reward("length", required=("answer",))
    def length(prompts, completions, completion_ids=None, **columns):
        txt, correct = _correct(completions, columns, prefilled_think, workers, timeout)
        lens = lengths(txt, completion_ids, columns.get("num_tokens"))
        groups = defaultdict(list)
        for i, key in enumerate(group_keys(prompts, len(txt))):
            if correct[i] is not None:
                groups[key].append(i)
        out: list[float | None] = [None] * len(txt)
        for members in groups.values():
            lo, hi = min(lens[i] for i in members), max(lens[i] for i in members)
            for i in members:
                lam = 0.0 if hi == lo else 0.5 - (lens[i] - lo) / (hi - lo)
                out[i] = lam if correct[i] == 1.0 else min(0.0, lam)
        return out

    return length


def cosine_reward(prefilled_think: bool = False, workers: int | None = None, timeout: float = verify.DEFAULT_DEADLINE,
                  min_value_wrong: float = -1.0, max_value_wrong: float = -0.5, min_value_correct: float = 0.5,
                  max_value_correct: float = 1.0, max_len: int = 1000):
    check_verify_options(workers, timeout)
    if not isinstance(max_len, int) or max_len < 1:
        raise UserError(f"reward option max_len must be a whole number >= 1, got {max_len!r}")

    @reward("cosine", required=("answer",))
    def cosine(prompts, completions, completion_ids=None, **columns):
        txt, correct = _correct(completions, columns, prefilled_think, workers, timeout)
        lens = lengths(txt, completion_ids, columns.get("num_tokens"))
        out: list[float | None] = []
        for ok, n in zip(correct, lens):
            if ok is None:
                out.append(None)
                continue
            # short -> the first value, max_len and beyond -> the second
            start, end = (max_value_correct, min_value_correct) if ok == 1.0 else (min_value_wrong, max_value_wrong)
            c = math.cos(min(1.0, n / max_len) * math.pi)
            out.append(end + 0.5 * (start - end) * (1.0 + c))
        return out

    return cosine


# --- repetition ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
                    r"|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def repetition_score(text: str, ngram_size: int) -> float:
    """1 - distinct n-grams / n-grams over the words (a CJK character is one word); 0..1."""
    words = _TOKEN.findall(text.lower())
    total = len(words) - ngram_size + 1
    if total <= 0:
        return 0.0
    seen = {hash(tuple(words[i:i + ngram_size])) for i in range(total)}
    return 1.0 - len(seen) / total


def repetition_reward(ngram_size: int = 3, max_penalty: float = -1.0):
    if not isinstance(ngram_size, int) or ngram_size < 1:
        raise UserError(f"reward option ngram_size must be a whole number >= 1, got {ngram_size!r}")
    if not isinstance(max_penalty, (int, float)) or max_penalty > 0:
        raise UserError(f"reward option max_penalty must be <= 0 (it is a penalty), got {max_penalty!r}")

    @reward("repetition")
    def repetition(prompts, completions, completion_ids=None, **columns):
        return [repetition_score(t, ngram_size) * max_penalty + 0.0 for t in texts(completions)]

    return repetition


# --- overlong (DAPO) -------------------------------------------------------------------------------------------


def overlong_reward(max_completion_len: int | None = None, soft_punish_cache: int | None = None):
    if max_completion_len is None:
        raise UserError("reward 'overlong' needs the option max_completion_len (the trainer's max_completion_length): "
                        "set reward_options.max_completion_len")
    if not isinstance(max_completion_len, int) or max_completion_len < 1:
        raise UserError(f"reward option max_completion_len must be a whole number >= 1, got {max_completion_len!r}")
    cache = max(1, max_completion_len // 5) if soft_punish_cache is None else soft_punish_cache
    if not isinstance(cache, int) or not 0 < cache <= max_completion_len:
        raise UserError(f"reward option soft_punish_cache must be a whole number in 1..max_completion_len "
                        f"({max_completion_len}), got {soft_punish_cache!r}")
    safe = max_completion_len - cache

    @reward("overlong")
    def overlong(prompts, completions, completion_ids=None, **columns):
        lens = lengths(texts(completions), completion_ids, columns.get("num_tokens"))
        return [0.0 if n <= safe else (safe - n) / cache if n <= max_completion_len else -1.0 for n in lens]

    return overlong
