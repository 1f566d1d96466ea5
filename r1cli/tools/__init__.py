"""Tools a model may call inside its turn ("reasoning with tools", beyond the paper, which names
tool use as R1's limit): the settings, the built-ins, the call format and a runner that never raises.

    from r1cli.tools import ToolSettings, ToolRunner, resolve_tools, parse_tool_calls, find_first_call_end
    settings = ToolSettings(tools=["calculator", "python"])      # every entry resolved and checked here
    runner = ToolRunner(resolve_tools(settings.tools, settings), settings)
    end = find_first_call_end(completion)                         # generation stops at </tool_call>
    [call] = parse_tool_calls(completion[:end])[-1:]
    text, ok = runner.run(call, calls_before=calls_made)          # never raises; ok False: "error: ..."
    completion = completion[:end] + render_tool_result(tokenizer, [(call.name or "error", text)])  # then go on

registry.py  ToolSettings (the recipe section), Tool, resolve_tools: names -> functions + JSON schemas
builtins.py  python (a program in r1cli's sandbox), calculator (exact arithmetic on the ast)
calls.py     the Hermes <tool_call> text: parse, find the end, render results through the chat template
runner.py    ToolRunner (user tools in a killable child process), ToolStats (TRL's metric names)
"""

from r1cli.tools.builtins import calculator, make_python
from r1cli.tools.calls import (CALL_END, CALL_START, ParsedCall, check_template, cut_output, find_first_call_end,
                               parse_tool_calls, render_tool_result, template_supports_tools)
from r1cli.tools.registry import BUILTINS, Tool, ToolSettings, resolve_tools
from r1cli.tools.runner import REASONS, ToolRunner, ToolStats

__all__ = ["BUILTINS", "CALL_END", "CALL_START", "REASONS", "ParsedCall", "Tool", "ToolRunner", "ToolSettings",
           "ToolStats", "calculator", "check_template", "cut_output", "find_first_call_end", "make_python",
           "parse_tool_calls", "render_tool_result", "resolve_tools", "template_supports_tools"]
