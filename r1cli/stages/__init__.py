"""One module per `r1` command; each is a function(config) -> output dir (see DESIGN.md)."""

from __future__ import annotations

import importlib


def load(name: str):
    """The stage's module, imported once its settings are resolved and checked: this is where each
    command loads the libraries its stage needs (datasets, torch, transformers: seconds), so that
    `r1 --help` and a mistaken setting cost none of that."""
    return importlib.import_module(f"r1cli.stages.{name}")
