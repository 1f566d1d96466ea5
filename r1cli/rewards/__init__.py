"""The reward registry: names (as recipes write them) -> factories of TRL reward functions.

    rewards = resolve_rewards({"accuracy": 1.0, "format": 1.0, "language": 0.5}, prefilled_think=False)
    for name, fn, weight in rewards:
        fn(prompts, completions, completion_ids=None, answer=[...], language=[...])  # -> [float | None]

Every reward has TRL's signature `f(prompts, completions, completion_ids=None, **columns)` and
returns one float per completion, or None where it does not apply to that row (accuracy on a
`general` row). `fn.__name__` is its name (TRL logs `rewards/<name>/mean`) and
`fn.required_columns` the dataset columns it needs. A recipe may also name a function of its
own by dotted path, `mypkg.rewards:my_reward` (used as is, TRL's signature).

Factories take keyword options; `get_reward` passes each one only the options it declares, so
a stage can hand the same options (prefilled_think, template, workers, reward_options from the
recipe) to every reward. An option no reward declares is a UserError (a typo in a recipe).
Entries are "module:factory" paths imported on first use: `code` pulls in the sandbox and the
RM rewards pull in transformers only when asked for. Add a reward by adding a line to REWARDS.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math as _math  # not `math`: importing r1cli.rewards.math rebinds that name here
from typing import Callable

from r1cli.errors import UserError


def _lazy(path: str) -> Callable:
    """A factory that imports `module:function` when first called."""
    module, attr = path.split(":")

    def factory(**options):
        return getattr(importlib.import_module(module), attr)(**options)

    factory.path = path
    return factory


REWARDS: dict[str, Callable] = {
    "accuracy": _lazy("r1cli.rewards.math:accuracy_reward"),
    "format": _lazy("r1cli.rewards.rule:format_reward"),
    "language": _lazy("r1cli.rewards.language:language_reward"),
    "reasoning_steps": _lazy("r1cli.rewards.rule:reasoning_steps_reward"),
    "length": _lazy("r1cli.rewards.rule:length_reward"),
    "cosine": _lazy("r1cli.rewards.rule:cosine_reward"),
    "repetition": _lazy("r1cli.rewards.rule:repetition_reward"),
    "overlong": _lazy("r1cli.rewards.rule:overlong_reward"),
    "code": _lazy("r1cli.rewards.code:code_reward"),
    "helpfulness": _lazy("r1cli.rewards.preference:helpfulness"),
    "harmlessness": _lazy("r1cli.rewards.preference:harmlessness"),
}


# --- options ----------------------------------------------------------------------------------------


def _target(factory: Callable) -> Callable | None:
    """The function behind a (lazy) factory, or None when its module cannot be imported."""
    path = getattr(factory, "path", None)
    if path is None:
        return factory
    module, attr = path.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def _accepts(fn: Callable) -> tuple[set[str], bool]:
    """(named keyword options, takes **kwargs too)."""
    params = inspect.signature(fn).parameters.values()
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def known_options() -> set[str]:
    """Every option some registered reward declares."""
    out: set[str] = set()
    for factory in REWARDS.values():
        fn = _target(factory)
        if fn is not None:
            out |= _accepts(fn)[0]
    return out


def check_options(options: dict) -> None:
    valid = known_options()
    for key in options:
        if key not in valid:
            near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (valid: {', '.join(sorted(valid))})"
            raise UserError(f"unknown reward option {key!r}{hint}")


# --- looking rewards up --------------------------------------------------------------------------------


def load_user_reward(path: str) -> Callable:
    """`pkg.mod:fn` -> the user's reward function (TRL's signature)."""
    module, _, attr = path.partition(":")
    if not module or not attr or not all(p.isidentifier() for p in module.split(".")) or not attr.isidentifier():
        raise UserError(f"reward {path!r} is not a valid dotted path: write it as package.module:function")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"reward {path!r}: cannot import module {module!r} ({e}): check it is installed or on "
                        "PYTHONPATH") from None
    fn = getattr(mod, attr, None)
    if fn is None:
        raise UserError(f"reward {path!r}: module {module!r} has no {attr!r}")
    if not callable(fn):
        raise UserError(f"reward {path!r} is a {type(fn).__name__}, not a function")
    return fn


def _unknown(name: str) -> UserError:
    near = difflib.get_close_matches(name, list(REWARDS), n=1, cutoff=0.4)
    hint = f"did you mean {near[0]!r}?" if near else f"valid: {', '.join(REWARDS)}"
    return UserError(f"unknown reward {name!r} ({hint}; or give a function as package.module:function)")


def get_reward(name: str, **options) -> Callable:
    r"""The reward function `name` (a registry name or `pkg.mod:fn`), built with the options it takes.

    Each registered factory's docstring (`REWARDS[name].path` says where it is) documents its
    reward: what it returns, the columns it reads, its options, and an example.

    >>> from r1cli.rewards import get_reward
    >>> fmt = get_reward("format", template="r1", workers=4)  # workers is accuracy's: not passed to format
    >>> fmt.__name__, fmt.required_columns
    ('format', ())
    >>> fmt(None, ["<think>\n2 + 2 = 4\n</think>\nThe answer is 4."])
    [1.0]
    >>> get_reward("acuracy")
    Traceback (most recent call last):
    r1cli.errors.UserError: unknown reward 'acuracy' (did you mean 'accuracy'?; or give a function as package.module:function)
    """
    if ":" in name:
        return load_user_reward(name)
    factory = REWARDS.get(name)
    if factory is None:
        raise _unknown(name)
    target = _target(factory)
    if target is None:
        raise UserError(f"reward {name!r} cannot be loaded ({factory.path}): its module failed to import")
    named, var_kw = _accepts(target)
    fn = factory(**{k: v for k, v in options.items() if var_kw or k in named})
    fn.__name__ = name
    if not hasattr(fn, "required_columns"):
        fn.required_columns = ()
    return fn


def resolve_rewards(spec: dict[str, float], **options) -> list[tuple[str, Callable, float]]:
    """[(name, function, weight)] for a recipe's `rewards:` mapping; every mistake is a UserError.
    A dotted path's name is its function name (the `reward_<name>` column of r1 score)."""
    if not isinstance(spec, dict) or not spec:
        raise UserError("rewards must name at least one reward with a weight, e.g. {accuracy: 1.0, format: 1.0}")
    for name, weight in spec.items():
        if ":" not in name and name not in REWARDS:
            raise _unknown(name)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not _math.isfinite(weight):
            raise UserError(f"reward {name!r} has weight {weight!r}: weights must be finite numbers")
    check_options(options)
    out, seen = [], {}
    for name, weight in spec.items():
        fn = get_reward(name, **options)
        short = name.rsplit(":", 1)[-1]
        if short in seen:
            raise UserError(f"rewards {seen[short]!r} and {name!r} are both called {short!r}: rename one")
        seen[short] = name
        if ":" in name:
            fn = _named(fn, short)
        out.append((short, fn, float(weight)))
    return out


def _named(fn: Callable, name: str) -> Callable:
    """A user's function under the name TRL and r1 score show, keeping its required_columns."""

    def wrapped(*args, **kwargs):
        return fn(*args, **kwargs)

    wrapped.__name__ = wrapped.__qualname__ = name
    wrapped.__doc__ = fn.__doc__
    wrapped.required_columns = tuple(getattr(fn, "required_columns", ()))
    return wrapped
