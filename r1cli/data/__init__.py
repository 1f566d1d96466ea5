"""Datasets: load any input a user hands r1, check its canonical columns, save it.

    from r1cli.data import load_prompts, save_dataset
    ds = load_prompts("gsm8k.jsonl")     # = validate(load_table(path), "prompts", path)
    save_dataset(ds, run.partial)        # inside artifacts.stage_output

io.py loads (JSONL/JSON, Parquet, Arrow, HF and r1 dataset dirs, dirs of files), schema.py
holds the canonical columns (DESIGN.md) and `validate`, formats.py maps public datasets
(GSM8K, MATH) onto them. The commands that use them (`r1 data inspect|export|import|merge`) are
in r1cli/stages/data.py; the toy world is r1cli/toy/.

Datasets from saved dirs are memory-mapped from the input dir, and `datasets` would write the
cache files of every later `.map()`/`.filter()` next to them, into the user's input dir. Inputs
must stay untouched, so importing this package turns datasets' caching off: transforms then
go to a temporary dir that datasets removes at exit.
"""

from __future__ import annotations

import os

import datasets

from r1cli.data.io import load_table, save_dataset
from r1cli.data.schema import DOMAINS, KINDS, guess_kind, validate

datasets.disable_caching()
# r1's own progress bars and one-line errors are the output; datasets' per-map bars are noise
datasets.disable_progress_bars()

__all__ = ["load_table", "validate", "guess_kind", "save_dataset", "load_prompts", "load_completions", "load_sft",
           "load_preferences", "load_safety", "KINDS", "DOMAINS"]


def _load(path: str | os.PathLike, kind: str, what: str):
    return validate(load_table(path, what), kind, path)


def load_prompts(path: str | os.PathLike, what: str = "--data"):
    """Prompts: `prompt` (+ `answer`, `domain`, `language`, `tests`, `id`)."""
    return _load(path, "prompts", what)


def load_completions(path: str | os.PathLike, what: str = "--data"):
    """Completions to score: prompt columns + `completion`."""
    return _load(path, "completions", what)


def load_sft(path: str | os.PathLike, what: str = "--data"):
    """SFT data: `messages` whose last turn is the assistant's."""
    return _load(path, "sft", what)


def load_preferences(path: str | os.PathLike, what: str = "--data"):
    """Preference pairs: `prompt`, `chosen`, `rejected`."""
    return _load(path, "preferences", what)


def load_safety(path: str | os.PathLike, what: str = "--data"):
    """Safety labels: `prompt`, `completion`, `label` (1 safe, 0 unsafe)."""
    return _load(path, "safety", what)
