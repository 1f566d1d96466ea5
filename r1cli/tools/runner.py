"""Run one parsed tool call, never raising: every failure becomes a message for the model.

    runner = ToolRunner(resolve_tools(settings.tools, settings), settings)
    text, ok = runner.run(call, calls_before=n)   # the result, or "error: ..." with ok False
    runner.stats.samples += len(batch)            # then runner.stats.metrics() / .counts()

A user tool (`package.module:function`) runs in a child process forked for the call, in a process
group of its own: past `tool_timeout` the whole group is killed, and so is anything it left behind
when it returns. Its result comes back through a pipe read up to a cap, and what it prints through
another, so a tool that hangs, forks, prints or returns 10 MB costs the caller a bounded time and a
few kB. A tool that returns None gives what it printed. A grandchild that calls setsid leaves the
group and survives: code that must be jailed belongs in the `python` tool (a pid namespace). A fork
copies only the calling thread: a tool that needs a lock another thread held at that moment (a
logging handler, a tokenizer's pool) hangs, and is stopped at the timeout like any other.

Why by hand: TRL calls tools in its own process, where a hanging or crashing tool stops training;
`multiprocessing` would pickle results of any size and cannot kill a tool's grandchildren.
"""

from __future__ import annotations

import inspect
import json
import os
import resource
import selectors
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from r1cli.tools.calls import ParsedCall, cut_output
from r1cli.tools.registry import Tool, ToolSettings

# --- counters --------------------------------------------------------------------------------------

# why a call failed: the keys of ToolStats.failures
REASONS = ("malformed", "limit", "unknown_tool", "bad_arguments", "raised", "timeout", "output", "crashed")


@dataclass
class ToolStats:
    """Calls and failures, with TRL's metric names (GRPOTrainer: calls per sample, failures per call).
    The caller adds the samples it generated to `samples`; stats of several runners `merge`."""

    samples: int = 0
    calls: int = 0
    failures: Counter = field(default_factory=Counter)  # reason (REASONS) -> calls

    def record(self, reason: str | None) -> None:
        self.calls += 1
        if reason is not None:
            self.failures[reason] += 1

    def merge(self, other: ToolStats) -> ToolStats:
        self.samples += other.samples
        self.calls += other.calls
        self.failures.update(other.failures)
        return self

    def metrics(self) -> dict[str, float]:
        failed = sum(self.failures.values())
        return {"tools/call_frequency": self.calls / self.samples if self.samples else 0.0,
                "tools/failure_frequency": failed / self.calls if self.calls else 0.0}

    def counts(self) -> dict:
        """For a manifest's `counts`."""
        return {"tool_calls": self.calls, "tool_failures": sum(self.failures.values()),
                "tool_failures_by_reason": dict(sorted(self.failures.items()))}


# --- one call ----------------------------------------------------------------------------------------


class ToolRunner:
    def __init__(self, tools: list[Tool], settings: ToolSettings):
        self.tools = {t.name: t for t in tools}
        self.settings = settings
        self.stats = ToolStats()

    def run(self, call: ParsedCall, calls_before: int = 0) -> tuple[str, bool]:
        """(result text, ok) for `call`, the sample's call number `calls_before` (from 0); never raises."""
        try:
            text, reason = self._run(call, calls_before)
        except Exception as e:  # a bug here must not stop generation either; the message says what it was
            text, reason = f"error: {type(e).__name__}: {e}", "raised"
        self.stats.record(reason)
        return cut_output(text, self.settings.tool_output_chars), reason is None

    def _run(self, call: ParsedCall, calls_before: int) -> tuple[str, str | None]:
        if not call.ok:
            return f"error: {call.error}", "malformed"
        if calls_before >= self.settings.max_tool_calls:
            return f"error: no more tool calls: one answer may make {self.settings.max_tool_calls}", "limit"
        tool = self.tools.get(call.name)
        if tool is None:
            return f"error: unknown tool {call.name!r}: the tools are {', '.join(self.tools) or 'none'}", "unknown_tool"
        try:
            # bound before the call, so that a TypeError raised inside the tool is not read as bad arguments
            inspect.signature(tool.function).bind(**call.arguments)
        except TypeError as e:
            return f"error: wrong arguments for {tool.name}: {e}; it takes {_signature(tool)}", "bad_arguments"
        if tool.in_process:
            try:
                return _as_text(tool.function(**call.arguments)), None
            except Exception as e:
                return f"error: {type(e).__name__}: {e}", "raised"
        return _run_in_child(tool, call.arguments, self.settings)


def _signature(tool: Tool) -> str:
    params = tool.schema["function"].get("parameters", {}).get("properties", {})
    args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in params.items())
    return f"{tool.name}({args})"


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # a circular structure
        return str(value)


# --- a user tool in a child process ----------------------------------------------------------------

# the child's first bytes on the result pipe: its status, then the payload's length
_RETURNED, _RAISED, _NONE = b"r", b"e", b"n"
_HEADER = 9


def _run_in_child(tool: Tool, arguments: dict, settings: ToolSettings) -> tuple[str, str | None]:
    cap = settings.tool_output_chars * 4 + _HEADER  # the longest result in UTF-8, and its header
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        os.close(output_r)
        _child(tool, arguments, settings, result_w, output_w)  # never returns
    os.close(result_w)
    os.close(output_w)
    try:
        os.setpgid(pid, pid)  # also here: a kill may come before the child's own setpgid ran
    except OSError:
        pass  # it ran already (or the child exited): either way the group exists or nothing is left
    try:
        return _collect(pid, result_r, output_r, cap, settings)
    finally:
        for kill in (os.killpg, os.kill):  # the group (what the tool left running), then the child itself
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.waitpid(pid, 0)  # reaped only now: until then no other process can take its pid (the group id)
        os.close(result_r)
        os.close(output_r)


def _collect(pid: int, result_r: int, output_r: int, cap: int, settings: ToolSettings) -> tuple[str, str | None]:
    """Read the child's result and prints until the result is complete, the child dies or time runs out."""
    data = {result_r: bytearray(), output_r: bytearray()}
    deadline = time.monotonic() + settings.tool_timeout
    with selectors.DefaultSelector() as sel:
        for fd in data:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while True:
            # short waits: a child that died is noticed even while a grandchild holds the pipes open
            for key, _ in sel.select(min(0.05, max(0.0, deadline - time.monotonic()))):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                data[key.fd] += chunk
            if len(data[output_r]) > cap:
                return f"error: the tool printed more than {cap} bytes and was stopped", "output"
            result = _complete(data[result_r], cap)
            if result is not None:
                status, payload = result
                break
            if _exited(pid):
                # it wrote everything before exiting: take what is still in the pipes, then give up
                for fd in list(sel.get_map()):
                    while chunk := _read_now(fd):
                        data[fd] += chunk
                result = _complete(data[result_r], cap)
                if result is None:
                    return "error: the tool's process died without a result (a crash, or os._exit)", "crashed"
                status, payload = result
                break
            if time.monotonic() >= deadline:
                return f"error: the tool did not finish within {settings.tool_timeout:g} s and was stopped", "timeout"
    if status == _RAISED:
        return payload, "raised"
    if status == _NONE:
        payload = data[output_r].decode("utf-8", "replace")
    return payload, None


def _complete(buf: bytearray, cap: int) -> tuple[bytes, str] | None:
    if len(buf) < _HEADER:
        return None
    length = int.from_bytes(buf[1:_HEADER], "big")
    if length > cap:  # not our child's protocol: the tool wrote to the result pipe itself
        return _RAISED, "error: the tool wrote to r1cli's result channel"
    if len(buf) < _HEADER + length:
        return None
    return bytes(buf[:1]), buf[_HEADER:_HEADER + length].decode("utf-8", "replace")


def _read_now(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def _exited(pid: int) -> bool:
    # WNOWAIT: not reaped, so its pid (the group id) stays ours until the kill in _run_in_child
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _child(tool: Tool, arguments: dict, settings: ToolSettings, result_w: int, output_w: int) -> None:
    """The forked child: run the tool, write its status and text to result_w, exit. Never returns
    into the caller's code, whatever the tool does."""
    try:
        os.setpgid(0, 0)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        # fresh file objects on fds 1 and 2: the caller's may be a test runner's in-memory capture
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
        _limit_memory(settings.tool_memory_mb)
        try:
            value = tool.function(**arguments)
            status, text = (_NONE, "") if value is None else (_RETURNED, _as_text(value))
        except BaseException as e:  # SystemExit too: the tool may not end the process its own way
            status, text = _RAISED, f"error: {type(e).__name__}: {e}"
        sys.stdout.flush()  # its prints reach the output pipe before the result is complete
        sys.stderr.flush()
        payload = cut_output(text, settings.tool_output_chars).encode("utf-8", "replace")
        message = status + len(payload).to_bytes(_HEADER - 1, "big") + payload
        while message:
            message = message[os.write(result_w, message):]
    finally:
        os._exit(0)


def _limit_memory(memory_mb: int) -> None:
    """The child may grow by memory_mb: it starts as a copy of the caller, whose size it keeps."""
    try:
        with open("/proc/self/status") as f:
            size_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return  # no /proc: the timeout still bounds the tool
    limit = (size_kb << 10) + (memory_mb << 20)
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
