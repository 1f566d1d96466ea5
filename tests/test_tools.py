"""The tool layer (r1cli/tools): the calculator's exactness and refusals, the python tool in the
sandbox, the call format, the runner against bad calls and bad user tools (tests/tool_fixtures.py,
imported by dotted path), the settings' checks, schemas, stats, and results rendered through the
Qwen chat templates TRL ships. Timeouts are short (0.5 s): every hostile tool must cost the caller
at most a couple of seconds past it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from r1cli.errors import UserError
from r1cli.settings import ConfigError
from r1cli.tools import (CALL_END, ToolRunner, ToolSettings, ToolStats, calculator, check_template, cut_output,
                         find_first_call_end, make_python, parse_tool_calls, render_tool_result, resolve_tools,
                         template_supports_tools)

TIMEOUT = 0.5


def call_text(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def runner(*tools: str, **settings) -> ToolRunner:
    s = ToolSettings(tools=list(tools), tool_timeout=TIMEOUT, **settings)
    return ToolRunner(resolve_tools(s.tools, s), s)


def run_one(r: ToolRunner, name: str, **arguments) -> tuple[str, bool]:
    return r.run(parse_tool_calls(call_text(name, **arguments))[0])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, patience: float = 2.0) -> bool:
    deadline = time.monotonic() + patience
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


# --- calculator ------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression, expected", [
    ("123456789*987654321", str(123456789 * 987654321)),
    ("1/3+1/6", "1/2"),
    ("2**100", str(2**100)),
    ("0.1 + 0.2", "3/10"),  # decimals are exact, not floats
    ("1.5e3 - 500", "1000"),
    ("-(7) // 2", "-4"),
    ("7 % 3 + +1", "2"),
    ("2 ** -3", "1/8"),
    ("(1/3 + 1/6) ** 2", "1/4"),
    ("6/4", "3/2"),
    ("10**999", "1" + "0" * 999),
])
def test_calculator_is_exact(expression, expected):
    assert calculator(expression) == expected


@pytest.mark.parametrize("expression, error, says", [
    ("x + 1", ValueError, "names are not allowed"),
    ("abs(-1)", ValueError, "function calls are not allowed"),
    ("(1).real", ValueError, "attributes are not allowed"),
    ("__import__('os')", ValueError, "not allowed"),
    ("True + 1", ValueError, "is not a number"),
    ("2 ^ 10", ValueError, "write 2**10"),
    ("9**9**9", ValueError, "more than 1000 digits"),
    ("10**1000", ValueError, "more than 1000 digits"),
    ("1e999999999", ValueError, "more than 1000 digits"),
    ("2 ** 0.5", ValueError, "whole-number exponents"),
    ("1/0", ZeroDivisionError, "division by zero"),
    ("5 % (2-2)", ZeroDivisionError, "division by zero"),
    ("0 ** -1", ZeroDivisionError, "negative power"),
    ("1 +", ValueError, "not an arithmetic expression"),
    ("1+" * 600 + "1", ValueError, "longer than"),
])
def test_calculator_refuses(expression, error, says):
    # 9**9**9 would not finish if computed: the refusal comes before the work
    with pytest.raises(error, match=says.replace("*", r"\*").replace("(", r"\(")):
        calculator(expression)


# --- the python tool -------------------------------------------------------------------------------


def test_python_tool_returns_stdout_and_stderr():
    python = make_python(timeout=2, memory_mb=256, output_chars=2000)
    assert python("print(6 * 7)") == "42\n"
    text = python("import sys\nprint('before')\nsys.exit('it broke')")
    assert text.startswith("before\n") and "it broke" in text and text.endswith("[exit code 1]")
    assert "ZeroDivisionError" in python("1/0")


def test_python_tool_timeout_says_so():
    python = make_python(timeout=TIMEOUT, memory_mb=256, output_chars=2000)
    assert "ran longer than 0.5 s" in python("while True: pass")  # stopped by the sandbox, and said


def test_python_tool_cuts_10mb_of_print():
    python = make_python(timeout=5, memory_mb=256, output_chars=500)
    text = python("print('x' * 10_000_000)")
    assert len(text) <= 500 and text.startswith("xxx") and "cut: the output was longer than" in text


def test_python_tool_keeps_the_sandbox():
    python = make_python(timeout=2, memory_mb=256, output_chars=2000)
    text = python("import socket\ns = socket.socket()\ns.settimeout(1)\nprint(s.connect_ex(('127.0.0.1', 22)))")
    assert text.strip().splitlines()[0] != "0"  # no network: connect fails (or socket() is refused)


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_calls_and_find_the_end():
    text = "think <tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call> more"
    end = find_first_call_end(text)
    assert text[:end].endswith(CALL_END) and find_first_call_end(text, end) is None
    [call] = parse_tool_calls(text)
    assert call.ok and call.name == "calculator" and call.arguments == {"expression": "12*34"}
    two = parse_tool_calls(call_text("a", x=1) + " and " + call_text("b") + " <tool_call>{\"name\": \"cut off")
    assert [c.name for c in two] == ["a", "b"]  # the unclosed third is not a call


@pytest.mark.parametrize("body, says", [
    ('{"name": "calculator", "arguments": {"expression": "1+1"', "not valid JSON"),
    ('["calculator"]', "must be a JSON object"),
    ('{"arguments": {}}', 'no "name"'),
    ('{"name": "calculator", "arguments": "1+1"}', '"arguments" must be a JSON object'),
])
def test_parse_errors(body, says):
    [call] = parse_tool_calls(f"<tool_call>{body}</tool_call>")
    assert not call.ok and says in call.error


# --- the runner: bad calls and bad tools -----------------------------------------------------------


def test_runner_bad_calls_become_messages():
    r = runner("calculator", "tool_fixtures:type_error_inside")
    [malformed] = parse_tool_calls("<tool_call>{oops}</tool_call>")
    assert r.run(malformed) == (f"error: {malformed.error}", False)
    text, ok = run_one(r, "calculater", expression="1")
    assert not ok and "unknown tool 'calculater'" in text and "calculator, type_error_inside" in text
    text, ok = run_one(r, "calculator", expr="1")
    assert not ok and "wrong arguments for calculator" in text and "calculator(expression: string)" in text
    # a TypeError raised inside a tool is the tool's failure, not wrong arguments
    text, ok = run_one(r, "type_error_inside", x=1)
    assert not ok and text.startswith("error: TypeError:") and "wrong arguments" not in text
    text, ok = run_one(r, "calculator", expression="1/0")
    assert (text, ok) == ("error: ZeroDivisionError: division by zero", False)
    assert r.run(parse_tool_calls(call_text("calculator", expression="1+1"))[0], calls_before=4) == (
        "error: no more tool calls: one answer may make 4", False)
    assert r.stats.failures == {"malformed": 1, "unknown_tool": 1, "bad_arguments": 1, "raised": 2, "limit": 1}


def test_user_tools_results():
    r = runner("tool_fixtures:lookup", "tool_fixtures:printer", "tool_fixtures:huge")
    text, ok = run_one(r, "lookup", key="b")
    assert ok and json.loads(text) == {"key": "b", "value": 2}  # a non-string result is JSON
    assert run_one(r, "printer", text="hello") == ("hello\n", True)  # None: what it printed
    text, ok = run_one(r, "huge", megabytes=10)
    assert ok and len(text) <= 2000 and "cut: the output was longer than 2000" in text


@pytest.mark.parametrize("tool, arguments, says", [
    ("boom", {"message": "no luck"}, "error: ValueError: no luck"),
    ("slow", {"seconds": 30}, "did not finish within 0.5 s"),
    ("chatty", {"megabytes": 10}, "printed more than"),
    ("crash", {"code": 3}, "died without a result"),
])
def test_hostile_user_tools_fail_fast(tool, arguments, says):
    r = runner(f"tool_fixtures:{tool}")
    text, ok = run_one(r, tool, **arguments)
    assert not ok and says in text
    assert r.stats.calls == 1 and sum(r.stats.failures.values()) == 1


def test_forking_user_tools_leave_nothing_behind(tmp_path):
    r = runner("tool_fixtures:fork_and_wait", "tool_fixtures:fork_and_leave")
    hung = tmp_path / "hung.pid"
    text, ok = run_one(r, "fork_and_wait", pid_file=str(hung))
    assert not ok and "did not finish" in text
    assert wait_gone(int(hung.read_text()))
    left = tmp_path / "left.pid"
    text, ok = run_one(r, "fork_and_leave", pid_file=str(left))
    # it returned while its child held the pipes open: the result is read, the child killed
    assert (text, ok) == ("left a child", True)
    assert wait_gone(int(left.read_text()))


def test_python_tool_through_the_runner():
    r = runner("python", tool_output_chars=300)
    text, ok = run_one(r, "python", code="while True: pass")
    assert ok and "ran longer than 0.5 s" in text  # the program's fate, not the call's
    text, ok = run_one(r, "python", code="print('z' * 10_000_000)")
    assert ok and len(text) <= 300 and "cut" in text


def test_cut_output_is_idempotent():
    once = cut_output("a" * 5000, 300)
    assert len(once) == 300 and cut_output(once, 300) == once
    assert cut_output("short", 300) == "short"


# --- settings and schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("entry, says", [
    ("calc", "tools[0] is no built-in tool (built-ins: python, calculator)"),
    ("no_such_module_xyz:f", "tools[0] does not import"),
    ("tool_fixtures:missing", "has no 'missing'"),
    ("tool_fixtures:NOT_CALLABLE", "not a function"),
    ("tool_fixtures:undocumented", "cannot be described to the model"),
    ("not a path:f", "not a valid dotted path"),
])
def test_settings_refuse_bad_tools(entry, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as e:
        ToolSettings(tools=[entry])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("field, value", [("max_tool_calls", -1), ("tool_timeout", 0), ("tool_output_chars", 10),
                                          ("tool_memory_mb", 1)])
def test_settings_ranges(field, value):
    with pytest.raises(ConfigError, match=field):
        ToolSettings(**{field: value})


def test_settings_refuse_two_tools_of_one_name():
    with pytest.raises(ConfigError, match="second tool named 'calculator'"):
        ToolSettings(tools=["calculator", "calculator"])


def test_schemas():
    s = ToolSettings(tools=["python", "calculator", "tool_fixtures:lookup"])
    schemas = {t.name: t.schema["function"] for t in resolve_tools(s.tools, s)}
    assert schemas["python"]["parameters"]["required"] == ["code"]
    assert schemas["calculator"]["parameters"]["properties"]["expression"]["type"] == "string"
    assert schemas["lookup"]["parameters"]["properties"] == {
        "key": {"type": "string", "description": "The key to look up."},
        "default": {"type": "integer", "description": "What to return for a key that is not there."}}
    assert schemas["lookup"]["parameters"]["required"] == ["key"]


# --- stats -----------------------------------------------------------------------------------------


def test_stats_count_and_merge():
    a, b = ToolStats(samples=4), ToolStats(samples=4)
    for reason in (None, None, "timeout"):
        a.record(reason)
    for reason in (None, "timeout", "malformed"):
        b.record(reason)
    total = ToolStats().merge(a).merge(b)
    assert total.metrics() == {"tools/call_frequency": 6 / 8, "tools/failure_frequency": 3 / 6}
    assert total.counts() == {"tool_calls": 6, "tool_failures": 3,
                              "tool_failures_by_reason": {"malformed": 1, "timeout": 2}}
    assert ToolStats().metrics() == {"tools/call_frequency": 0.0, "tools/failure_frequency": 0.0}


# --- results through the chat template -------------------------------------------------------------

TRL_TEMPLATES = Path(__import__("trl").__file__).parent / "chat_templates"


def tokenizer_with(template: str | None):
    from tiny_lm import tiny_tokenizer

    tok = tiny_tokenizer()
    if template:
        tok.chat_template = (TRL_TEMPLATES / template).read_text()
    return tok


def test_render_result_qwen2_5():
    tok = tokenizer_with("qwen2_5.jinja")
    assert template_supports_tools(tok)
    check_template(tok)
    assert render_tool_result(tok, [("calculator", "408")]) == (
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n408\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


def test_render_result_qwen3_two_results():
    tok = tokenizer_with("qwen3.jinja")
    text = render_tool_result(tok, [("calculator", "408"), ("python", "7\n")], enable_thinking=False)
    assert text == ("<|im_end|>\n<|im_start|>user\n<tool_response>\n408\n</tool_response>\n<tool_response>\n7\n\n"
                    "</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_template_without_tools_is_refused():
    tok = tokenizer_with(None)  # tiny_lm's template: only role and content
    assert not template_supports_tools(tok)
    with pytest.raises(UserError, match="cannot express tool calls") as e:
        check_template(tok)
    assert "\n" not in str(e.value)
