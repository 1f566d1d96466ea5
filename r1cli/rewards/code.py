"""The `code` reward: run the last code block of a completion against the row's tests.

    r1 score completions.jsonl --rewards code --out scored     # rows carry `tests`
    rewards: {code: 1.0}                                        # in a grpo recipe

As in the public code-RL datasets (APPS, TACO, open-r1's verifiable-coding-problems), a row's
`tests` is a list of `{"input": str, "output": str}` cases (or that list as a JSON string, or
APPS' `{"inputs": [...], "outputs": [...]}`). The program reads the input on stdin; a case
passes when it exits 0 within the limits and its stdout equals the expected output after
trailing whitespace is trimmed from every line and from the end. Reward = cases passed /
cases. Rows whose `domain` is set and is not `code` get None (not applicable); so do rows
with no tests.

Which code runs: the fenced blocks (```lang ... ```) of the summary (the text after
`</think>`: code the model only drafted while thinking does not count), last one whose tag
is empty or a language the sandbox runs (python, py, bash, sh, perl, javascript, js; see
sandbox.LANGUAGES and which interpreters exist). Untagged blocks are python. Blocks tagged
otherwise (``` text, ```output, ```cpp) are skipped: a sample-output block after the
solution must not hide it. No runnable block -> 0.0.

Every case runs in its own sandbox (r1cli/rewards/sandbox.py), and the cases of all
completions of a batch run concurrently on a small thread pool (one thread per core: each
waits on a child process). A program that hits the wall-time limit on one case is taken to
hang on all of them: its cases not yet started count as failed without running, so one
infinite loop costs one timeout, not one per case.
"""

from __future__ import annotations

import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from r1cli.errors import UserError
from r1cli.rewards import sandbox
from r1cli.templates import summary_text

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.S)


# --- reading completions and tests ------------------------------------------------------------


def extract_code(text: Any, prefilled_think: bool = False) -> tuple[str, str] | None:
    """(language, source) of the last runnable fenced block in the summary, or None."""
    runnable = set(sandbox.available_languages())
    found = None
    for m in _FENCE.finditer(summary_text(text, prefilled_think)):
        tag = m.group(1).lower()
        language = sandbox.ALIASES.get(tag, tag) if tag else "python"
        if language in runnable and m.group(2).strip():
            found = (language, m.group(2))
    return found


def parse_tests(value: Any, row: int | None = None) -> list[tuple[str, str]] | None:
    """A row's `tests` as [(stdin, expected stdout)]; None when the row has none."""
    where = f"`tests` of row {row}" if row is not None else "`tests`"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise UserError(f"{where} is not valid JSON ({e}): give a list of {{\"input\", \"output\"}} cases") from None
    if isinstance(value, dict) and "inputs" in value and "outputs" in value:  # APPS / TACO layout
        value = [{"input": i, "output": o} for i, o in zip(value["inputs"], value["outputs"])]
    if not isinstance(value, (list, tuple)):
        raise UserError(f"{where} must be a list of {{\"input\": str, \"output\": str}} cases, got {type(value).__name__}")
    cases = []
    for k, case in enumerate(value):
        if not isinstance(case, dict) or "input" not in case or "output" not in case:
            raise UserError(f"{where}, case {k}: expected {{\"input\": str, \"output\": str}}, got {str(case)[:80]!r}")
        cases.append((_text(case["input"], where, k), _text(case["output"], where, k)))
    return cases or None


def _text(value: Any, where: str, k: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n".join(value) + "\n"  # some datasets store input lines as a list
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"{where}, case {k}: input and output must be strings, got {type(value).__name__}")


def normalize_output(text: str) -> str:
    """Trailing whitespace trimmed per line and at the end; \\r\\n read as \\n."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).rstrip()


# --- the reward --------------------------------------------------------------------------------


def code_reward(*, timeout: float = 4.0, memory_mb: int = 256, workers: int | None = None,
                isolation: str = "auto", prefilled_think: bool = False, **_other_options):
    r"""The `code` reward: the share of a row's test cases that the completion's program passes.

    The last runnable fenced block of the summary (after `</think>`) runs once per case in the
    sandbox (r1cli/rewards/sandbox.py), reading the case's input on stdin; a case passes when the
    program exits 0 within the limits and its stdout equals the expected output up to trailing
    whitespace. Untagged blocks are python; blocks tagged with a language the sandbox does not
    run (```text, ```cpp) are skipped.

    Returns:
        The reward function `code(prompts, completions, completion_ids=None, **columns)`, which
        gives cases passed / cases per completion (0.0 when the summary has no runnable block),
        or None where it does not apply: a row whose `domain` is set and is not `code`, or a
        row with no tests. A dataset with no `tests` column at all is a UserError.

    Args:
        prompts (`list`):
            Not read.
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Not read.
        tests (`list`, column, required):
            Per row a list of `{"input": str, "output": str}` cases, that list as a JSON string,
            or APPS' `{"inputs": [...], "outputs": [...]}`; None or "" for a row without tests.
        domain (`list[str]`, column, *optional*):
            Rows whose domain is set and is not `code` get None.
        timeout (`float`, factory option, defaults to `4.0`):
            Wall seconds per case. A program that times out on one case fails its other cases
            without running them.
        memory_mb (`int`, factory option, defaults to `256`):
            Address-space limit per process of the program.
        workers (`int`, factory option, *optional*):
            Cases run at once (threads, each waiting on a sandbox process); defaults to the cores.
        isolation (`str`, factory option, defaults to `"auto"`):
            The sandbox mode, as `sandbox.run` takes it (`"auto"` picks namespaces when the kernel
            allows them).
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: the summary is the text after `</think>`.
        **_other_options:
            Options meant for other rewards (a stage hands every reward the same ones): ignored.

    Example (one tiny program runs in the sandbox, about 0.1 s; the other rows run nothing):
    >>> from r1cli.rewards.code import code_reward
    >>> code = code_reward(timeout=2.0)
    >>> completions = ["<think>\nreverse it\n</think>\n```python\nprint(input()[::-1])\n```",
    ...                "<think>\nreverse it\n</think>\nIt prints cba.",
    ...                "Hello!"]
    >>> tests = [[{"input": "abc", "output": "cba"}], [{"input": "abc", "output": "cba"}], None]
    >>> code(None, completions, tests=tests, domain=["code", "code", "general"])
    [1.0, 0.0, None]
    """
    limits = sandbox.Limits(timeout=timeout, memory_mb=memory_mb)
    workers = max(1, workers or len(os.sched_getaffinity(0)))

    def code(prompts, completions, completion_ids=None, **columns) -> list[float | None]:
        if columns.get("tests") is None:
            raise UserError("the code reward needs a `tests` column: a list of {\"input\", \"output\"} cases per row")
        tests, domains = columns["tests"], columns.get("domain") or [None] * len(completions)
        rewards: list[float | None] = [None] * len(completions)
        jobs, n_cases = [], {}
        for i, completion in enumerate(completions):
            if domains[i] not in (None, "", "code"):
                continue
            cases = parse_tests(tests[i], row=i)
            if cases is None:
                continue
            block = extract_code(completion, prefilled_think)
            rewards[i] = 0.0
            if block is None:
                continue
            n_cases[i] = len(cases)
            jobs += [(k, i, block, case) for k, case in enumerate(cases)]
        passed = {i: 0 for i in n_cases}
        hung: set[int] = set()
        lock = threading.Lock()

        def run_case(job) -> None:
            _, i, (language, source), (stdin, expected) = job
            if i in hung:
                return
            result = sandbox.run(source, stdin, language, limits, isolation)
            ok = result.ok and normalize_output(result.stdout) == normalize_output(expected)
            with lock:
                passed[i] += ok
                if result.timed_out:
                    hung.add(i)

        jobs.sort(key=lambda job: job[:2])  # first cases of every program first: a hang shows early
        with ThreadPoolExecutor(workers, thread_name_prefix="r1-code") as pool:
            list(pool.map(run_case, jobs))  # list(): re-raise a SandboxError here
        for i, n in n_cases.items():
            rewards[i] = passed[i] / n
        return rewards

    code.required_columns = ("tests",)
    return code
