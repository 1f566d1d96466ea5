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
    r"""The `format` reward: 1.0 when a completion follows the template, else 0.0.

    Returns:
        The reward function `format(prompts, completions, completion_ids=None, **columns)`, which
        gives 1.0 or 0.0 per completion and never None: the template applies to every row.

    Args:
        prompts (`list`):
            Not read: the format is judged on the completion alone.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids, **columns:
            Not read (no dataset column is needed).
        template (`str`, factory option, defaults to `"r1"`):
            `"r1"`: `<think>\n` reasoning `\n</think>\n` then a non-empty summary, one think block.
            `"r1zero"`: `<think> ... </think> <answer> ... </answer>` and nothing after it.
        prefilled_think (`bool`, factory option, defaults to `False`):
            The chat template ends the prompt with `<think>`, so a completion starts inside the
            reasoning and is judged without its opening tag.

    Example:
    >>> from r1cli.rewards.rule import format_reward
    >>> fmt = format_reward()
    >>> fmt(None, ["<think>\n2 + 2 = 4\n</think>\nThe answer is 4.", "The answer is 4."])
    [1.0, 0.0]
    >>> format_reward(prefilled_think=True)(None, ["2 + 2 = 4\n</think>\nThe answer is 4."])
    [1.0]
    >>> format_reward(template="r1zero")(None, ["<think> 2 + 2 = 4 </think> <answer> 4 </answer>"])
    [1.0]
    """
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
    r"""The `reasoning_steps` reward: min(1, step markers in the CoT / min_steps) (open-r1's).

    Markers: "Step 1:", a line opening with "1." or "- " or "* ", "First,", "Second,", "Next,",
    "Finally,", and the Chinese 第一步 / 首先 / 其次 / 然后 / 接着 / 最后.

    Returns:
        The reward function `reasoning_steps(prompts, completions, completion_ids=None, **columns)`,
        which gives a float in 0..1 per completion and never None. A completion with no `<think>`
        block is read whole.

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids, **columns:
            Not read (no dataset column is needed).
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: the CoT is the text before `</think>`.
        min_steps (`int`, factory option, defaults to `3`):
            Markers that earn the full reward.

    Example:
    >>> from r1cli.rewards.rule import reasoning_steps_reward
    >>> steps = reasoning_steps_reward(min_steps=2)
    >>> steps(None, ["<think>\nStep 1: add.\nStep 2: check.\n</think>\n4",
    ...              "<think>\nFirst, add them.\n</think>\n4",
    ...              "<think>\nIt is 4.\n</think>\n4"])
    [1.0, 0.5, 0.0]
    """
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
    r"""The `length` reward (Kimi k1.5, section 2.3.3): shorter correct answers score more.

    Within the completions of one prompt, with lengths in [min, max],
    lambda = 0.5 - (len - min) / (max - min); a correct completion gets lambda, a wrong one
    min(0, lambda), so a wrong answer is never rewarded for being short. All lengths equal: 0.

    Returns:
        The reward function `length(prompts, completions, completion_ids=None, **columns)`, which
        gives a float in -0.5..0.5 per completion, or None where `accuracy` is None (a `general`
        or `code` row, an empty `answer`); such rows are left out of their group's min and max.

    Args:
        prompts (`list`):
            Groups the completions: those of equal prompts form one group (they need not be next
            to each other). None puts every completion in one group.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Token ids (TRL passes them): the lengths. Without them the `num_tokens` column, else
            characters.
        answer (`list[str]`, column, required):
            The reference answers, as for `accuracy`.
        domain (`list[str]`, column, *optional*):
            `general` and `code` rows get None.
        num_tokens (`list[int]`, column, *optional*):
            Lengths in tokens when `completion_ids` is not given (`r1 eval` writes it).
        prefilled_think, workers, timeout (factory options):
            As for `accuracy` (`r1cli.rewards.math.accuracy_reward`), which decides correctness.

    Example:
    >>> from r1cli.rewards.rule import length_reward
    >>> length = length_reward()
    >>> right, wrong = "<think>\nadd\n</think>\n\\boxed{4}", "<think>\nadd\n</think>\n\\boxed{5}"
    >>> length(["2+2?"] * 3 + ["Hi"], [right, wrong, wrong, "Hello!"],
    ...        completion_ids=[[0] * 10, [0] * 10, [0] * 30, [0] * 5],
    ...        answer=["4", "4", "4", ""], domain=["math", "math", "math", "general"])
    [0.5, 0.0, -0.5, None]
    """
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
    r"""The `cosine` reward (open-r1's cosine-scaled, after Yeo et al. 2025): correctness scaled by length.

    A correct answer scores from max_value_correct (length 0) down to min_value_correct (at
    max_len), along half a cosine; a wrong one from min_value_wrong (length 0) up to
    max_value_wrong (at max_len): a long wrong answer is less bad than a short one. Lengths
    past max_len score as max_len.

    Returns:
        The reward function `cosine(prompts, completions, completion_ids=None, **columns)`, which
        gives a float per completion, or None where `accuracy` is None (a `general` or `code`
        row, an empty `answer`).

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Token ids (TRL passes them): the lengths. Without them the `num_tokens` column, else
            characters.
        answer (`list[str]`, column, required):
            The reference answers, as for `accuracy`.
        domain (`list[str]`, column, *optional*):
            `general` and `code` rows get None.
        num_tokens (`list[int]`, column, *optional*):
            Lengths in tokens when `completion_ids` is not given.
        min_value_wrong, max_value_wrong (`float`, factory options, default `-1.0`, `-0.5`):
            A wrong answer's score at length 0 and at max_len.
        min_value_correct, max_value_correct (`float`, factory options, default `0.5`, `1.0`):
            A correct answer's score at max_len and at length 0.
        max_len (`int`, factory option, defaults to `1000`):
            The length (in the unit above) where the schedule ends.
        prefilled_think, workers, timeout (factory options):
            As for `accuracy` (`r1cli.rewards.math.accuracy_reward`), which decides correctness.

    Example:
    >>> from r1cli.rewards.rule import cosine_reward
    >>> cosine = cosine_reward(max_len=100)
    >>> right, wrong = "<think>\nadd\n</think>\n\\boxed{4}", "<think>\nadd\n</think>\n\\boxed{5}"
    >>> cosine(None, [right, right, wrong, wrong], completion_ids=[[], [0] * 100, [], [0] * 100],
    ...        answer=["4"] * 4)
    [1.0, 0.5, -1.0, -0.5]
    """
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
    r"""The `repetition` penalty (open-r1's, after Yeo et al.): max_penalty x the share of repeated n-grams.

    Score = max_penalty * (1 - distinct n-grams / n-grams) over the lower-cased words of the
    whole completion (`repetition_score`); a CJK character is a word of its own, so repeated
    Chinese counts too. Fewer than ngram_size words: 0.

    Returns:
        The reward function `repetition(prompts, completions, completion_ids=None, **columns)`,
        which gives a float in max_penalty..0 per completion and never None.

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids, **columns:
            Not read (no dataset column is needed).
        ngram_size (`int`, factory option, defaults to `3`):
            Words per n-gram.
        max_penalty (`float`, factory option, defaults to `-1.0`):
            The score of a completion that is one n-gram over and over; must be <= 0.

    Example:
    >>> from r1cli.rewards.rule import repetition_reward
    >>> repetition = repetition_reward()
    >>> repetition(None, ["the cat sat on the mat", "the cat sat the cat sat"])
    [0.0, -0.25]
    """
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
    r"""The `overlong` penalty (DAPO's soft overlong punishment): 0 when short, down to -1 near the limit.

    0 up to max_completion_len - soft_punish_cache tokens, then linearly down to -1 at
    max_completion_len, and -1 beyond it.

    Returns:
        The reward function `overlong(prompts, completions, completion_ids=None, **columns)`,
        which gives a float in -1..0 per completion and never None.

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions; their length counts when nothing else gives it.
        completion_ids (`list[list[int]]`, *optional*):
            Token ids (TRL passes them): the lengths. Without them the `num_tokens` column, else
            characters.
        num_tokens (`list[int]`, column, *optional*):
            Lengths in tokens when `completion_ids` is not given.
        max_completion_len (`int`, factory option, required):
            The trainer's max_completion_length; a UserError when missing.
        soft_punish_cache (`int`, factory option, defaults to max_completion_len // 5):
            How many tokens before the limit the penalty starts, 1..max_completion_len.

    Example:
    >>> from r1cli.rewards.rule import overlong_reward
    >>> overlong = overlong_reward(max_completion_len=10, soft_punish_cache=4)
    >>> overlong(None, ["a", "b", "c"], completion_ids=[[0] * 6, [0] * 8, [0] * 12])
    [0.0, -0.5, -1.0]
    """
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
