"""How a setting is checked: the base of every config class in config.py.

    top_p: float = setting(0.95, gt=0, le=1)     # a range beside the field
    def check(self): ...                          # the rules that join several fields

A class checks its fields when it is made (Section.__post_init__), so the recipe resolver, which
builds the whole tree, checks every setting, nested sections included, before a command does
anything. A failure is a ConfigError: one line naming the setting; the resolver puts the
section's dotted path in front of the name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from r1cli.errors import UserError


class ConfigError(UserError):
    """A setting outside its rules. `key` is relative to the class that found it; the recipe
    resolver puts the section's path in front (`eval.sampling.top_p`)."""

    def __init__(self, key: str, rule: str, value=dataclasses.MISSING):
        self.key, self.rule, self.value = key, rule, value
        got = "" if value is dataclasses.MISSING else f", got {value!r}"
        super().__init__(f"{key} {rule}{got}")

    def under(self, prefix: str) -> "ConfigError":
        return ConfigError(prefix + self.key, self.rule, self.value)


def setting(default=dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None, default_factory=dataclasses.MISSING):
    """A dataclass field with a range; for a list, the range holds for each item."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return field(default=default, default_factory=default_factory, metadata={"range": bounds})


_RULES = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
          "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


def in_range(value, bounds: dict) -> bool:
    return all(_RULES[k][1](value, b) for k, b in bounds.items())


def range_text(bounds: dict) -> str:
    if set(bounds) >= {"ge", "le"} or set(bounds) >= {"gt", "le"} or set(bounds) >= {"ge", "lt"}:
        lo, hi = ("[" if "ge" in bounds else "("), ("]" if "le" in bounds else ")")
        return f"must be in {lo}{bounds.get('ge', bounds.get('gt'))}, {bounds.get('le', bounds.get('lt'))}{hi}"
    return "must be " + " and ".join(f"{_RULES[k][0]} {v}" for k, v in bounds.items())


@dataclass
class Section:
    """Base of every config class: checks each field's range, then `check()`."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            bounds = f.metadata.get("range")
            value = getattr(self, f.name)
            if not bounds or value is None or isinstance(value, bool):
                continue
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(v, (int, float)) and not in_range(v, bounds):
                    raise ConfigError(f.name, range_text(bounds), v)
        self.check()

    def check(self) -> None:
        """Rules that join several fields (a subclass adds its own and calls super().check())."""


def field_default(f: dataclasses.Field):
    """A dataclass field's default value (its factory's product), None when it has none."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def needs(key: str, text: str | None, *placeholders: str) -> None:
    missing = [p for p in placeholders if text is not None and p not in text]
    if missing:
        raise ConfigError(key, f"must contain {', '.join(missing)} where that text goes")
