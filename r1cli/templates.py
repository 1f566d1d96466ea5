"""Prompt templates (r1, r1zero) and the one place that splits a completion into
(reasoning, summary) and pulls out its final answer.

R1 format (DeepSeek-R1 stage 1 onward): the assistant turn is
    <think>\\n{reasoning}\\n</think>\\n{summary}
where the summary ends with the answer in \\boxed{}. R1-Zero format (paper, Table 1):
    <think> {reasoning} </think> <answer> {answer} </answer>
Some chat templates (R1-Distill, Qwen3) end the generation prompt with `<think>\\n`, so the
completion starts inside the reasoning and has no opening tag: every parser here takes
`prefilled_think` for that case (the trap that makes other toolkits' format reward 0).
"""

from __future__ import annotations

import re
from typing import Any

from r1cli.errors import UserError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
REASONING_TOKENS = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]

# DeepSeek-R1 paper, Table 1 (the R1-Zero training template), verbatim but for {prompt}.
R1ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:"
)
TEMPLATES = ("r1", "r1zero")


# --- text of prompts and completions ----------------------------------------------------


def completion_text(completion: Any) -> str:
    """A completion as text: TRL passes a string, or a list of messages for chat data."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        parts = [m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(str(p) for p in parts)
    return str(completion)


def prompt_text(prompt: Any) -> str:
    """The user's words of a prompt (last user message of a chat, or the string itself)."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        users = [m.get("content") or "" for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1]) if users else ""
    return str(prompt)


def apply_template(question: Any, template: str = "r1", r1zero_template: str = R1ZERO_TEMPLATE, system: str | None = None):
    """The prompt a stage feeds the model: chat messages (r1) or a plain string (r1zero)."""
    if template == "r1zero":
        return r1zero_template.format(prompt=prompt_text(question))
    if isinstance(question, str):
        msgs = [{"role": "user", "content": question}]
    else:
        msgs = [dict(m) for m in question]
    if system and not any(m.get("role") == "system" for m in msgs):
        msgs = [{"role": "system", "content": system}] + msgs
    return msgs


def generation_prefills_think(tokenizer) -> bool:
    """True when the tokenizer's chat template ends the generation prompt inside `<think>`."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "1+1?"}], add_generation_prompt=True,
                                             tokenize=False)
    except Exception as e:  # jinja errors of a template shipped in the checkpoint's tokenizer_config.json
        name = getattr(tokenizer, "name_or_path", "") or "the model"
        raise UserError(f"the chat template of {name} does not render ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else e!r}): fix chat_template in its tokenizer_config.json")
    tail = text.rstrip()
    return tail.endswith(THINK_OPEN)


def prefilled_think(tokenizer, template: str = "r1", setting: bool | None = None) -> bool:
    """Whether completions start inside <think>: the recipe's `prefilled_think` when it is set, else whether
    the r1 template's chat template pre-fills it (the r1zero template is plain text and never does)."""
    if setting is not None:
        return setting
    return template == "r1" and generation_prefills_think(tokenizer)


# --- parsing completions ----------------------------------------------------------------


def split_completion(text: Any, prefilled_think: bool = False) -> tuple[str | None, str]:
    """(reasoning, summary). reasoning is None when there is no closed `<think>` block.

    With no `</think>` the whole text is the summary (a no-CoT reply, as stage 3 keeps for
    trivial prompts). Text before an opening `<think>` is ignored.
    """
    text = completion_text(text)
    close = text.find(THINK_CLOSE)
    if close < 0:
        return None, text.strip()
    head = text[:close]
    open_ = head.find(THINK_OPEN)
    if open_ >= 0:
        reasoning = head[open_ + len(THINK_OPEN):]
    elif prefilled_think:
        reasoning = head
    else:
        return None, text.strip()
    return reasoning.strip(), text[close + len(THINK_CLOSE):].strip()


def reasoning_text(text: Any, prefilled_think: bool = False) -> str:
    """The CoT of a completion (empty when it has none)."""
    return split_completion(text, prefilled_think)[0] or ""


def summary_text(text: Any, prefilled_think: bool = False) -> str:
    """What the user reads after the CoT (the whole text when there is no CoT)."""
    return split_completion(text, prefilled_think)[1]


# The format checks and last_boxed are linear scans (str.find / one pass over the braces),
# not backtracking regexes: a lazy `.*?\S.*?` pattern is quadratic (14 s on a 40 kB completion
# with no closing tag), and reward functions see such completions.


def _one_block(text: str, open_: str | None, close: str) -> tuple[str, str] | None:
    """(inside, after) when `text` is `open_` + inside + `close` + after with each tag once."""
    if text.count(close) != 1 or (open_ is not None and text.count(open_) != 1):
        return None
    start = 0
    if open_ is not None:
        if not text.startswith(open_):
            return None
        start = len(open_)
    end = text.index(close)
    return text[start:end], text[end + len(close):]


def is_r1_format(text: Any, prefilled_think: bool = False) -> bool:
    """`<think>\\n...\\n</think>\\n` + a non-empty summary, one think block only."""
    text = completion_text(text)
    if prefilled_think and text.lstrip().startswith(THINK_OPEN):
        prefilled_think = False  # the model wrote the tag again: judge it as written
    if prefilled_think:
        parts = None if THINK_OPEN in text else _one_block(text, None, THINK_CLOSE)
    else:
        parts = _one_block(text.lstrip(), THINK_OPEN, THINK_CLOSE)
        if parts is not None and not parts[0].startswith("\n"):
            parts = None
    if parts is None:
        return False
    reasoning, summary = parts
    return reasoning.endswith("\n") and summary.startswith("\n") and bool(reasoning.strip()) and bool(summary.strip())


def is_r1zero_format(text: Any, prefilled_think: bool = False) -> bool:
    """`<think> ... </think> <answer> ... </answer>` and nothing after it."""
    text = completion_text(text)
    if prefilled_think and text.lstrip().startswith(THINK_OPEN):
        prefilled_think = False
    if prefilled_think:
        parts = None if THINK_OPEN in text else _one_block(text, None, THINK_CLOSE)
    else:
        parts = _one_block(text.lstrip(), THINK_OPEN, THINK_CLOSE)
    if parts is None or not parts[0].strip():
        return False
    answer = _one_block(parts[1].strip(), ANSWER_OPEN, ANSWER_CLOSE)
    return answer is not None and bool(answer[0].strip()) and not answer[1].strip()


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if none."""
    opens = {m.end() - 1 for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)}
    if not opens:
        return None
    stack, best = [], None
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            o = stack.pop()
            if o in opens and (best is None or o > best[0]):
                best = (o, m.start())
    return text[best[0] + 1: best[1]].strip() if best is not None else None


def _box_spans(text: str) -> list[tuple[int, int, int]]:
    """(start of `\\boxed`, its `{`, its matching `}`) of every box that is not inside another
    box, left to right; one pass over the braces (unbalanced boxes are left out)."""
    opens = {m.end() - 1: m.start() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)}
    if not opens:
        return []
    stack, spans = [], []
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            o = stack.pop()
            if o in opens:
                spans.append((opens[o], o, m.start()))
    spans.sort()
    outer, end = [], -1
    for span in spans:
        if span[0] > end:
            outer.append(span)
            end = span[2]
    return outer


# What may stand between two boxes for them to be one answer: `\boxed{(1, 2)}, \boxed{(2, 1)}`,
# `\boxed{k = 45} \text{ and } \boxed{n = 2}`, `$x = \boxed{1}$ or $x = \boxed{2}$`: separators, spacing,
# `$`, one variable's name and `=`. Any other word breaks the chain (`\boxed{3}, no wait: \boxed{4}`
# answers 4).
_BETWEEN_NOISE = re.compile(r"\\(?:text|textrm|mathrm|mbox)\s*\{|[{}$&~]|\\[()\[\]]|\\(?:q?quad|[,;: !])|\\\\|\s")
_SEPARATORS = {",", ";", "and", "or"}


def boxed_answers(text: str) -> list[str]:
    """The final answer's boxes: the last `\\boxed{}` and the boxes chained to it by nothing but
    separators (`,` `;` and or, spaces, `$`, `\\text{ and }`), in order, repeats dropped."""
    spans = _box_spans(text)
    if not spans:
        return []
    chain = [spans[-1]]
    for span in reversed(spans[:-1]):
        between = text[span[2] + 1: chain[0][0]]
        words = re.findall(r"[A-Za-z]+|\S", _BETWEEN_NOISE.sub(" ", between))
        labels = [w for w in words if w not in _SEPARATORS]  # `x = \boxed{1}` or `x = \boxed{2}`
        if len(between) > 80 or len(words) > 6 or any(len(w) > 1 and w != "=" for w in labels) or labels.count("=") > 1:
            break
        chain.insert(0, span)
    out: list[str] = []
    for _, o, c in chain:
        content = text[o + 1: c].strip()
        for _ in range(3):  # \boxed{\boxed{3}} (a few levels: each is a pass over the text)
            inner = _box_spans(content)
            if not (inner and inner[0][0] == 0 and inner[0][2] == len(content) - 1):
                break
            content = content[inner[0][1] + 1: -1].strip()
        if content and content not in out:
            out.append(content)
    return out


def answer_tag(text: str) -> str | None:
    """Content of the last `<answer>...</answer>`."""
    i = text.rfind(ANSWER_OPEN)
    if i < 0:
        return None
    j = text.find(ANSWER_CLOSE, i)
    return text[i + len(ANSWER_OPEN): j if j >= 0 else len(text)].strip()


def find_answer(text: Any, prefilled_think: bool = False) -> tuple[str | None, str]:
    """(answer, where it was found) for a completion; where is "boxed", "tag" or "none".

    In the summary: the boxed answer (boxed_answers, several boxes joined by ", "), else the
    `<answer>` tag's content (a box inside it wins), else none."""
    summary = summary_text(text, prefilled_think)
    tagged = answer_tag(summary)
    scope = tagged if tagged is not None else summary
    boxes = boxed_answers(scope)
    if boxes:
        return ", ".join(boxes), "boxed"
    if tagged:
        return tagged, "tag"
    return None, "none"


def extract_answer(text: Any, prefilled_think: bool = False) -> str | None:
    """The final answer a completion gives (find_answer), None when it gives none."""
    return find_answer(text, prefilled_think)[0]
