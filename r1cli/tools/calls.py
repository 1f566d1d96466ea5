"""The text of a tool call and of its result: the Hermes format that Qwen2.5 / Qwen3 chat templates emit.

    <tool_call>
    {"name": "calculator", "arguments": {"expression": "12*34"}}
    </tool_call>

A generation loop stops at the first `</tool_call>` (`find_first_call_end`), parses the calls
(`parse_tool_calls`), runs them (runner.py) and appends `render_tool_result(...)`: the end of the
assistant turn, the tool turn and the opening of the next assistant turn, as the tokenizer's own chat
template renders them (Qwen: `<tool_response>...</tool_response>` in a user turn), so the model sees
results exactly as it saw them in its tool-use training.

Why by hand: transformers' `parse_response` parses a whole reply after generation, through a response
schema that a tokenizer may not have; a loop that stops mid-reply at `</tool_call>` needs the call
text, and a malformed call must become a message for the model instead of an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from r1cli.errors import UserError

CALL_START = "<tool_call>"
CALL_END = "</tool_call>"
_CALL = re.compile(re.escape(CALL_START) + r"(.*?)" + re.escape(CALL_END), re.S)


# --- results are cut -----------------------------------------------------------------------------


def cut_output(text: str, limit: int, cut: bool = False) -> str:
    """`text` cut to at most `limit` characters, the marker included, so cutting twice changes nothing.
    `cut`: the text was cut already upstream (a capped pipe): mark it even when it fits."""
    if len(text) <= limit and not cut:
        return text
    marker = f"\n[... cut: the output was longer than {limit} characters]"
    return text[: max(0, limit - len(marker))] + marker


# --- calls in the model's text -------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCall:
    """One `<tool_call>` block: a name and its arguments, or the reason it could not be read."""

    name: str | None
    arguments: dict | None
    error: str | None
    text: str  # the block's body as the model wrote it

    @property
    def ok(self) -> bool:
        return self.error is None


def find_first_call_end(text: str, start: int = 0) -> int | None:
    """The index just past the first `</tool_call>` at or after `start` (where a generation loop cuts
    the completion to run the call), None when there is none yet."""
    i = text.find(CALL_END, start)
    return None if i < 0 else i + len(CALL_END)


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every complete `<tool_call>...</tool_call>` block of `text`, in order.

    An opening tag without its closing one is not a call: it is a completion cut off by the token
    limit, and nothing ran. A call without "arguments" is a call with none (a tool that takes no
    argument); "arguments" must otherwise be a JSON object, as the Qwen templates write it.
    """
    calls = []
    for match in _CALL.finditer(text):
        body = match.group(1).strip()
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            calls.append(ParsedCall(None, None, f"the tool call is not valid JSON ({e.msg} at character {e.pos})", body))
            continue
        if not isinstance(obj, dict):
            calls.append(ParsedCall(None, None, 'the tool call must be a JSON object {"name": ..., "arguments": {...}}', body))
            continue
        name, arguments = obj.get("name"), obj.get("arguments", {})
        if not isinstance(name, str) or not name:
            calls.append(ParsedCall(None, None, 'the tool call has no "name" (a string naming the tool)', body))
        elif not isinstance(arguments, dict):
            calls.append(ParsedCall(name, None, f'"arguments" must be a JSON object, got {type(arguments).__name__}', body))
        else:
            calls.append(ParsedCall(name, arguments, None, body))
    return calls


# --- results back to the model, through the chat template ----------------------------------------

# a placeholder call: only the text after its </tool_call> is kept, which does not depend on it
_PLACEHOLDER_CALL = [{"type": "function", "function": {"name": "tool", "arguments": {"x": "y"}}}]


def render_tool_result(tokenizer, results: list[tuple[str, str]], **template_kwargs) -> str:
    """The text that follows the assistant's `</tool_call>`: the end of its turn, one tool message per
    (tool name, result), and the opening of the next assistant turn, as the chat template renders them.

    Rendered inside a placeholder conversation and cut after the assistant's `</tool_call>`. The text
    comes from the template alone, not from a reply before it (Qwen3 renders the last assistant turn
    differently from an earlier one). `template_kwargs` go to the template (e.g. enable_thinking=False).
    A result may contain the template's special tokens as text (a program can print `<|im_end|>`):
    tokenize the results apart from the template's text when that matters.
    """
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": _PLACEHOLDER_CALL}]
    messages += [{"role": "tool", "name": name, "content": content} for name, content in results]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
    end = rendered.find(CALL_END)  # the first one is the assistant's: the user turn and no system prompt have one
    if end < 0:
        raise UserError(f"the tokenizer's chat template does not write tool calls as {CALL_START}...{CALL_END} "
                        "(as Qwen2.5 and Qwen3 templates do): give such a chat template, or drop `tools`")
    return rendered[end + len(CALL_END):]


def template_supports_tools(tokenizer) -> bool:
    """Can the chat template render a tool call in the Hermes format and a tool message after it?
    (TRL's `supports_tool_calling` for the roles, plus the `<tool_call>` tags this module parses.)"""
    from trl import supports_tool_calling  # heavy: torch; only when a tokenizer is loaded anyway

    if not supports_tool_calling(tokenizer):
        return False
    try:
        return "tool_content_sentinel" in render_tool_result(tokenizer, [("tool", "tool_content_sentinel")])
    except Exception:  # UserError (no <tool_call> tags), or a template that renders arguments only as a string
        return False


def check_template(tokenizer) -> None:
    """UserError (one line) when the chat template cannot express tool calls and their results."""
    if not template_supports_tools(tokenizer):
        raise UserError(f"the tokenizer's chat template cannot express tool calls: `tools` needs a template that "
                        f"writes assistant tool_calls as {CALL_START}{{...}}{CALL_END} and renders role 'tool' messages "
                        "(Qwen2.5 / Qwen3 templates do): give one (e.g. trl/chat_templates/qwen3.jinja) or drop `tools`")
