"""`language`: the paper's language-consistency reward, the share of the CoT written in the
target language (DeepSeek-R1, stage 2: "the proportion of target language words in the CoT").

    r1 score completions.jsonl --rewards language --out scored
    language_consistency("<CoT text>", "zh")  -> 0.0 .. 1.0   (rejection sampling and eval use it)

What counts as a word (each word belongs to one script):
- Han: each CJK ideograph is one word. Chinese has no spaces, and a segmenter (jieba) would be
  a dependency and a model of its own; one character is about one morpheme, and a Chinese word
  is 1.5-2 characters, so against English's one-word-per-run this slightly favours Chinese in a
  mixed CoT. What matters for the reward is that switching language costs, which it does.
- Kana and Hangul: each character (Japanese, Korean). Latin, Cyrillic, Greek, Arabic, ...:
  each maximal run of that script's letters is one word ("don't" is two: don and t).
- Neutral (not counted): digits and numbers, punctuation and math symbols, single Latin letters
  (variables: "设 x = 3" is all Chinese), common math names (sin, log, gcd, ...), anything inside
  LaTeX math ($...$, \\(...\\), \\[...\\]) or LaTeX commands (\\frac), and code (``` fences and
  `inline`).
- Score = target-script words / all counted words. A CoT with no countable words scores 1.0
  (nothing in it is in another language); no CoT at all (or an empty one) scores 0.0, so a
  completion cannot dodge the reward by skipping its reasoning (`r1 eval` counts such samples
  as inconsistent too).
- Target: the row's `language` column (ISO code: en, zh, ja, ko, ru, fr, ...), else detected
  from the prompt (the script with most words; a real share of kana or Hangul means ja / ko).
  A language whose script is unknown, or a prompt with no words, gives None (the reward
  does not apply to that row).
"""

from __future__ import annotations

import re
import unicodedata

from r1cli.rewards.common import column, reward, texts
from r1cli.templates import prompt_text, reasoning_text

# --- scripts and words ---------------------------------------------------------------------------------

# a word per character for scripts written without spaces; one alternative per script
_CHAR_SCRIPTS = {
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff",
    "kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "hangul": "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f",
}
_RUN_SCRIPTS = {
    "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f",
    "cyrillic": "\u0400-\u04ff",
    "greek": "\u0370-\u03ff",
    "arabic": "\u0600-\u06ff",
    "hebrew": "\u0590-\u05ff",
    "devanagari": "\u0900-\u097f",
    "thai": "\u0e00-\u0e7f",
}
_WORD = re.compile("|".join([f"(?P<{k}>[{v}])" for k, v in _CHAR_SCRIPTS.items()]
                            + [f"(?P<{k}>[{v}]+)" for k, v in _RUN_SCRIPTS.items()]))

LANGUAGE_SCRIPTS = {
    "zh": {"han"}, "ja": {"han", "kana"}, "ko": {"hangul", "han"}, "ru": {"cyrillic"}, "uk": {"cyrillic"},
    "bg": {"cyrillic"}, "el": {"greek"}, "ar": {"arabic"}, "fa": {"arabic"}, "he": {"hebrew"},
    "hi": {"devanagari"}, "th": {"thai"},
}
LATIN_LANGUAGES = ("en fr de es it pt nl sv da no nb fi pl cs sk sl hr ro hu tr id ms vi tl sw ca eu "
                   "et lv lt").split()
LANGUAGE_SCRIPTS.update({code: {"latin"} for code in LATIN_LANGUAGES})
# which language a detected script stands for
_SCRIPT_LANGUAGE = {"han": "zh", "latin": "en", "kana": "ja", "hangul": "ko", "cyrillic": "ru", "greek": "el",
                    "arabic": "ar", "hebrew": "he", "devanagari": "hi", "thai": "th"}

_MATH_NAMES = frozenset("sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp max min "
                        "gcd lcm mod lim det deg dx dy dt".split())
# spans whose words are neutral, blanked in this order: code, then math (an unclosed code
# fence runs to the end; other unclosed openers are left as text)
_NEUTRAL_SPANS = (("```", "```", True), ("`", "`", False), ("$$", "$$", False), ("$", "$", False),
                  ("\\(", "\\)", False), ("\\[", "\\]", False))
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")


def _blank(text: str, open_: str, close: str, to_end: bool) -> str:
    """Replace every open_...close span with a space: str.find, linear even with 10^5 openers
    and no closer (a lazy regex would rescan the rest of the text from each one)."""
    out, i = [], 0
    while True:
        a = text.find(open_, i)
        if a < 0:
            break
        b = text.find(close, a + len(open_))
        if b < 0:
            if to_end:
                out.append(text[i:a])
                i = len(text)
            break
        out.append(text[i:a])
        out.append(" ")
        i = b + len(close)
    out.append(text[i:])
    return "".join(out)


def neutral_removed(text: str) -> str:
    for open_, close, to_end in _NEUTRAL_SPANS:
        if open_ in text:
            text = _blank(text, open_, close, to_end)
    return _LATEX_COMMAND.sub(" ", text)


def script_words(text: str) -> dict[str, int]:
    """Counted words per script (see the module docstring for what counts)."""
    text = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    counts: dict[str, int] = {}
    for m in _WORD.finditer(neutral_removed(text)):
        script = m.lastgroup
        if script == "latin":
            word = m.group()
            if len(word) == 1 or word.lower() in _MATH_NAMES:
                continue
        counts[script] = counts.get(script, 0) + 1
    return counts


def normalize_language(code) -> str | None:
    """'zh-CN' / 'ZH' / 'zh_Hans' -> 'zh'; None for an empty value."""
    if code is None:
        return None
    code = str(code).strip().lower().replace("_", "-").split("-")[0]
    return code or None


def detect_language(text: str) -> str | None:
    """The language of the script with the most words in `text` (None when it has none)."""
    counts = script_words(text)
    if not counts:
        return None
    for script in ("kana", "hangul"):  # Japanese and Korean text also has Han characters
        if counts.get(script, 0) >= 0.1 * sum(counts.values()):
            return _SCRIPT_LANGUAGE[script]
    return _SCRIPT_LANGUAGE[max(counts, key=counts.get)]


def language_consistency(text: str, target: str) -> float:
    r"""Share of the counted words of `text` written in the `target` language's script; 1.0 when
    nothing is countable. Raises ValueError for a language whose script is not known.

    >>> language_consistency("设 x = 3, so x squared is 9", "zh")  # 设 against so, squared, is
    0.25
    """
    scripts = LANGUAGE_SCRIPTS.get(normalize_language(target) or "")
    if scripts is None:
        raise ValueError(f"unknown language {target!r}: known are {', '.join(sorted(LANGUAGE_SCRIPTS))}")
    counts = script_words(text)
    total = sum(counts.values())
    if total == 0:
        return 1.0
    return sum(v for k, v in counts.items() if k in scripts) / total


# --- the reward ----------------------------------------------------------------------------------------


def language_reward(prefilled_think: bool = False):
    r"""The `language` reward (R1's language consistency): the share of the CoT's words in the target language.

    Only the reasoning (inside `<think>`) is read. Digits, math, LaTeX, code and single letters
    are neutral; a CJK character is a word of its own (the module docstring says what counts).

    Returns:
        The reward function `language(prompts, completions, completion_ids=None, **columns)`, which
        gives a float in 0..1 per completion: 1.0 for a CoT with no countable words, 0.0 for no
        CoT (or an empty one). None where the target language is unknown: the `language` value
        is a language whose script is not known, or there is none and the prompt has no words to
        detect it from.

    Args:
        prompts (`list`):
            Plain strings or chat messages: the target language is detected from them (the
            script with most words) on rows with no `language`.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Not read.
        language (`list[str]`, column, *optional*):
            The target language per row, an ISO code (en, zh, zh-CN, ja, ru, ...).
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: the CoT is the text before `</think>`.

    Example:
    >>> from r1cli.rewards.language import language_reward
    >>> language = language_reward()
    >>> language(["What is two plus two?", "What is two plus two?", "2 + 2 = ?", "1 + 1 = ?"],
    ...          ["<think>\ntwo plus two makes four\n</think>\n4",
    ...           "<think>\ntwo plus two 等于四\n</think>\n4",
    ...           "<think>\n二加二等于四\n</think>\n4",
    ...           "<think>\none and one\n</think>\n2"],
    ...          language=[None, None, "zh", None])
    [1.0, 0.5, 1.0, None]
    """

    @reward("language")
    def language(prompts, completions, completion_ids=None, **columns):
        n = len(completions)
        langs = column(columns, "language", n)
        prompts = list(prompts) if prompts is not None else [None] * n
        out: list[float | None] = []
        for text, lang, prompt in zip(texts(completions), langs, prompts):
            target = normalize_language(lang) or detect_language(prompt_text(prompt))
            if target not in LANGUAGE_SCRIPTS:
                out.append(None)
                continue
            cot = reasoning_text(text, prefilled_think)
            out.append(language_consistency(cot, target) if cot else 0.0)
        return out

    return language
