"""The built-in tools: `python` (a program run in r1cli's sandbox) and `calculator` (exact arithmetic).

Each is documented the way TRL documents tools (type hints and a Google-style docstring with an
`Args:` block), so `transformers.utils.get_json_schema` describes it to the model.

    calculator("1/3 + 1/6")                      # "1/2"
    make_python(timeout=4, memory_mb=256, output_chars=2000)("print(2**10)")   # "1024\\n"

Why the calculator is by hand: Python's `eval` runs anything, sympy's `sympify` evaluates through
`eval` too, and neither bounds the work (`9**9**9` runs for minutes). This one walks the `ast` of
numbers and + - * / // % ** only, in exact Fractions, and refuses a result over MAX_DIGITS digits
before computing it.
"""

from __future__ import annotations

import ast
import math
import re
import signal
from collections.abc import Callable
from fractions import Fraction

from r1cli.rewards.sandbox import Limits, run
from r1cli.tools.calls import cut_output

# --- python: a program in the sandbox ------------------------------------------------------------


def make_python(timeout: float, memory_mb: int, output_chars: int) -> Callable[[str], str]:
    """The `python` tool bound to these limits (the sandbox's other limits keep their defaults)."""
    # stop the program once it has printed more than the result can hold (4 bytes: the longest UTF-8
    # character), so a program printing 10 MB costs 8 kB here, not 10 MB
    limits = Limits(timeout=timeout, memory_mb=memory_mb, output_bytes=output_chars * 4 + 1)

    def python(code: str) -> str:
        """Run a Python program in a sandbox and return what it printed.

        No network and no files kept: each call starts a fresh interpreter, so print every value you need.

        Args:
            code: The complete Python program to run; print() every value you want to see.
        """
        result = run(code, language="python", limits=limits)
        text = result.stdout + result.stderr  # stderr (a traceback) after the output, as a terminal shows it
        if result.timed_out:
            status = f"\n[stopped: the program ran longer than {timeout:g} s]"
        elif result.output_truncated:
            status = ""  # the cut marker says it
        elif result.signal is not None:
            status = f"\n[stopped: killed by {signal.Signals(result.signal).name}]"
        elif result.returncode:
            status = f"\n[exit code {result.returncode}]"
        else:
            status = ""
        # the status is kept whole: the output gives up its room
        return cut_output(text, output_chars - len(status), cut=result.output_truncated) + status

    return python


# --- calculator: exact arithmetic on the ast -----------------------------------------------------

MAX_DIGITS = 1000  # of a numerator or denominator, input or result
MAX_EXPRESSION_CHARS = 1000
_LIMIT = 10**MAX_DIGITS
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}
_REFUSED = {ast.Name: "names", ast.Call: "function calls", ast.Attribute: "attributes", ast.Subscript: "subscripts",
            ast.Compare: "comparisons", ast.BoolOp: "and/or"}
_EXPONENT = re.compile(r"[eE]([+-]?\d+)$")


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly: integers and decimals, + - * / // % ** and parentheses.

    A whole result is written as an integer, any other as an exact fraction p/q (no rounding).

    Args:
        expression: The expression, e.g. "123456789*987654321" or "(1/3 + 1/6) ** 2".
    """
    expression = expression.strip()
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression, mode="eval")
        value = _evaluate(tree.body, expression)
    except SyntaxError as e:
        raise ValueError(f"not an arithmetic expression ({e.msg})") from None
    except (RecursionError, MemoryError):
        raise ValueError("the expression is nested too deeply") from None
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _evaluate(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(_literal(node, source))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _evaluate(node.operand, source)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_evaluate(node.left, source), _evaluate(node.right, source))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, source), _evaluate(node.right, source)
        if right == 0 and not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            raise ZeroDivisionError("division by zero")
        return _bounded(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ValueError("^ is not a power here: write 2**10")
    if isinstance(node, ast.Constant):
        raise ValueError(f"{node.value!r} is not a number")
    what = _REFUSED.get(type(node)) or (f"{type(node.op).__name__} operations" if hasattr(node, "op")
                                         else f"{type(node).__name__} expressions")
    raise ValueError(f"{what} are not allowed: only numbers, + - * / // % ** and parentheses")


def _literal(node: ast.Constant, source: str) -> Fraction:
    if isinstance(node.value, int):
        return Fraction(node.value)
    # a decimal is read from its text (0.1 is 1/10, not the float nearest to it)
    text = ast.get_source_segment(source, node).replace("_", "")
    exponent = _EXPONENT.search(text)
    if exponent and abs(int(exponent.group(1))) > MAX_DIGITS:  # 1e999999999 would build a huge int
        raise ValueError(f"{text} has more than {MAX_DIGITS} digits")
    return Fraction(text)


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ValueError(f"only whole-number exponents are exact, got {exponent}: use the python tool for roots")
    if base == 0 and exponent < 0:
        raise ZeroDivisionError("0 cannot be raised to a negative power")
    if base not in (0, 1, -1):
        # digits of the result, estimated before computing it (9**9**9 would take minutes)
        bits = abs(exponent.numerator) * math.log2(max(abs(base.numerator), base.denominator))
        if bits > MAX_DIGITS * math.log2(10) + 1:
            raise ValueError(f"the result would have more than {MAX_DIGITS} digits")
    return _bounded(base ** int(exponent))


def _bounded(value: Fraction) -> Fraction:
    if abs(value.numerator) >= _LIMIT or value.denominator >= _LIMIT:
        raise ValueError(f"the result has more than {MAX_DIGITS} digits")
    return value
