"""What every reward function shares: TRL's call convention, per-row columns, lengths.

TRL calls a reward as `f(prompts=..., completions=..., completion_ids=..., **columns)` where
each dataset column is a list parallel to `completions`, plus `trainer_state`, `log_extra`,
`log_metric` (and `environments`) that are not columns. A completion is a string or a list
of chat messages (templates.completion_text turns either into text). `reward()` below gives a
function the name TRL logs (`rewards/<name>/mean`) and the columns it needs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from r1cli.errors import UserError
from r1cli.templates import completion_text

# domains whose correctness is not a math answer: the code reward (sandbox) and the RMs judge them
NOT_MATH = ("general", "code")


def reward(name: str, required: Sequence[str] = ()) -> Callable:
    """Decorator: set `__name__` (TRL logs rewards/<name>) and `required_columns`."""

    def wrap(fn):
        fn.__name__ = fn.__qualname__ = name
        fn.required_columns = tuple(required)
        return fn

    return wrap


def texts(completions: Sequence[Any]) -> list[str]:
    return [completion_text(c) for c in completions]


def column(columns: dict, name: str, n: int) -> list:
    """Column `name` as a list of n values (None everywhere when the dataset lacks it)."""
    values = columns.get(name)
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


def lengths(texts_: list[str], completion_ids=None, num_tokens=None) -> list[int]:
    """Completion lengths in tokens when known (TRL's completion_ids, or a `num_tokens` column as
    `r1 eval` writes), else in characters (r1 score on plain text)."""
    if completion_ids is not None:
        return [len(ids) for ids in completion_ids]
    if num_tokens is not None and all(isinstance(v, int) for v in num_tokens):
        return list(num_tokens)
    return [len(t) for t in texts_]


def group_keys(prompts: Sequence[Any] | None, n: int) -> list[str]:
    """A key per row that is equal for completions of the same prompt (TRL puts a prompt's
    G completions next to each other, but `r1 score` input may not)."""
    if prompts is None:
        return [""] * n
    return [repr(p) for p in prompts]


def fix_pad_token(tokenizer, model=None) -> None:
    """Sequence-classification heads find the last real token by pad_token_id: set it from eos."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UserError("the reward model's tokenizer has neither a pad nor an eos token: set one and save it")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
