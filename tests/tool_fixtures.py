"""User tools for tests/test_tools.py, importable as `tool_fixtures:<name>` (tests/ is on sys.path):
well-behaved ones and ones that raise, hang, fork, crash or flood, each documented as a tool must be."""

from __future__ import annotations

import os
import time

NOT_CALLABLE = 3


def lookup(key: str, default: int = 0) -> dict:
    """Look a key up in a small table.

    Args:
        key: The key to look up.
        default: What to return for a key that is not there.
    """
    return {"key": key, "value": {"a": 1, "b": 2}.get(key, default)}


def undocumented(x):
    return x


def boom(message: str) -> str:
    """Raise ValueError.

    Args:
        message: The error message.
    """
    raise ValueError(message)


def type_error_inside(x: int) -> str:
    """Raise a TypeError from inside the tool (not an argument mistake).

    Args:
        x: Any number.
    """
    return "a" + x


def slow(seconds: float) -> str:
    """Sleep, then answer.

    Args:
        seconds: How long to sleep.
    """
    time.sleep(seconds)
    return "woke up"


def _fork_sleeper(pid_file: str) -> int:
    """A child that sleeps for a minute; its pid written to pid_file before this returns."""
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    with open(pid_file, "w") as f:
        f.write(str(pid))
    return pid


def fork_and_wait(pid_file: str) -> str:
    """Start a child process that sleeps, and wait for it (hangs).

    Args:
        pid_file: Where the child writes its pid.
    """
    os.waitpid(_fork_sleeper(pid_file), 0)
    return "never"


def fork_and_leave(pid_file: str) -> str:
    """Start a child process that sleeps, and return at once, leaving it behind.

    Args:
        pid_file: Where the child writes its pid.
    """
    _fork_sleeper(pid_file)
    return "left a child"


def chatty(megabytes: int) -> str:
    """Print a lot.

    Args:
        megabytes: How much to print.
    """
    for _ in range(megabytes):
        print("x" * (1 << 20))
    return "done"


def huge(megabytes: int) -> str:
    """Return a long string.

    Args:
        megabytes: Its length in MB.
    """
    return "y" * (megabytes << 20)


def printer(text: str) -> None:
    """Print a text and return nothing.

    Args:
        text: What to print.
    """
    print(text)


def crash(code: int) -> str:
    """End the process without a result.

    Args:
        code: The exit code.
    """
    os._exit(code)
