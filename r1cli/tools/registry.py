"""Which tools a model may call: the `ToolSettings` section and `resolve_tools`.

    settings = ToolSettings(tools=["calculator", "python", "mypkg.tools:lookup"])   # checked here
    tools = resolve_tools(settings.tools, settings)   # [Tool(name, function, schema, in_process), ...]

A tool is a built-in name or a user function given as `package.module:function`. Every entry is
resolved when the settings are made (so when a recipe is resolved, before any model loads): an
unknown name, a path that does not import, a non-callable, or a function that
`transformers.utils.get_json_schema` cannot describe (it needs type hints and a Google-style
docstring with an `Args:` block, as TRL's tools have) is a ConfigError naming the entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from r1cli.settings import ConfigError, Section, setting
from r1cli.tools.builtins import calculator, make_python

# name -> the tool bound to the settings
BUILTINS: dict[str, Callable[[ToolSettings], Callable]] = {
    "python": lambda s: make_python(s.tool_timeout, s.tool_memory_mb, s.tool_output_chars),
    "calculator": lambda s: calculator,
}


@dataclass
class ToolSettings(Section):
    """Reasoning with tools: the model calls tools inside its turn (beyond the paper, which names
    tool use as R1's limit). Calls are written in the Hermes format (r1cli/tools/calls.py)."""

    # built-in names (python, calculator) or user functions as package.module:function; empty = no tools
    tools: list[str] = field(default_factory=list)
    # tool calls one sample may make; later calls get an error message instead of a result
    max_tool_calls: int = setting(4, ge=0)
    # seconds one call may run (the python tool's program, or a user tool's child process)
    tool_timeout: float = setting(4.0, gt=0)
    # a result longer than this is cut, with a marker saying so (room for the marker: at least 200)
    tool_output_chars: int = setting(2000, ge=200)
    # the python tool's address space; for a user tool, what its process may add to the caller's
    tool_memory_mb: int = setting(256, ge=32)

    def check(self) -> None:
        resolve_tools(self.tools, self)


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable
    schema: dict  # transformers.utils.get_json_schema(function): what the chat template shows the model
    # built-ins run in this process (python's program runs in the sandbox; calculator bounds its own work);
    # user functions run in a child process per call (r1cli/tools/runner.py)
    in_process: bool


def resolve_tools(names: list[str], settings: ToolSettings) -> list[Tool]:
    """The tools named by `names`, built-ins bound to `settings`; ConfigError for a bad entry."""
    if not names:
        return []
    from transformers.utils import get_json_schema  # heavy: only when there are tools

    tools: dict[str, Tool] = {}
    for i, entry in enumerate(names):
        key = f"tools[{i}]"
        if ":" in entry:
            function, in_process = _load_function(key, entry), False
        elif entry in BUILTINS:
            function, in_process = BUILTINS[entry](settings), True
        else:
            raise ConfigError(key, f"is no built-in tool (built-ins: {', '.join(BUILTINS)}); "
                                   "or give a function as package.module:function", entry)
        try:
            schema = get_json_schema(function)
        except Exception as e:  # transformers' DocstringParsingException, TypeHintParsingException, ...
            raise ConfigError(key, f"cannot be described to the model ({e}): give the function type hints and a "
                                   "Google-style docstring with an Args: block", entry) from None
        name = schema["function"]["name"]
        if name in tools:
            raise ConfigError(key, f"is a second tool named {name!r}: tool names must differ", entry)
        tools[name] = Tool(name, function, schema, in_process)
    return list(tools.values())


def _load_function(key: str, path: str) -> Callable:
    module, _, attr = path.partition(":")
    if not all(p.isidentifier() for p in module.split(".")) or not attr.isidentifier():
        raise ConfigError(key, "is not a valid dotted path: write it as package.module:function", path)
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # ImportError, or the module's own code failing
        raise ConfigError(key, f"does not import ({type(e).__name__}: {e}): check the module is on PYTHONPATH",
                          path) from None
    function = getattr(mod, attr, None)
    if function is None:
        raise ConfigError(key, f"names nothing: module {module!r} has no {attr!r}", path)
    if not callable(function):
        raise ConfigError(key, f"is a {type(function).__name__}, not a function", path)
    return function
