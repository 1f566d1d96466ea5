"""Shared fixtures: the toy world (small) built once per test session, and a subprocess runner.

    toy_data  Path of `r1 toy data` output with a few hundred rows per split
    toy_base  Path of `r1 toy base` output trained for a few steps (loadable, not accurate)
    run_r1    run_r1("toy", "data", out) -> CompletedProcess of `python -m r1cli ...` (exit codes)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# small enough to build in a second or two; every split still has both languages
TOY_DATA_SET = ["n_rl=200", "n_coldstart=200", "n_eval=60", "n_general=120", "n_general_eval=40",
                "n_helpful_pairs=120", "n_helpful_pairs_eval=40", "n_safety=120", "n_rl_tools=100", "n_coldstart_tools=60",
                "n_eval_tools=20"]
# a few steps of a 2-layer model: seconds, loadable, not accurate (that is what `make demo` is for)
# one start: a 30-step base copies nothing, and the tests need it loadable, not copying
TOY_BASE_SET = ["num_layers=2", "batch_size=4", "max_length=128", "eval_prompts=4", "attempts=1"]


def _r1(*args) -> None:
    from r1cli.cli import main

    main([str(a) for a in args])


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "data"
    _r1("toy", "data", out, "--seed", 0, *[x for s in TOY_DATA_SET for x in ("--set", s)])
    return out


@pytest.fixture(scope="session")
def toy_base(tmp_path_factory) -> Path:
    import torch

    # one thread: on a machine shared with other jobs, two spinning OpenMP threads per process
    # made a training step ten times slower (measured), one thread never loses much
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("toy") / "base"
    try:
        _r1("toy", "base", out, "--seed", 0, "--steps", 30, *[x for s in TOY_BASE_SET for x in ("--set", s)])
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture
def run_r1():
    """Run `python -m r1cli ARGS` in a subprocess; returns the CompletedProcess (text, captured)."""

    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        return subprocess.run([sys.executable, "-m", "r1cli", *[str(a) for a in args]], capture_output=True,
                              text=True, env=env, timeout=timeout)

    return run
