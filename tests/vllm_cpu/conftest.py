"""The vLLM tests: every vLLM path of r1cli, run on the CPU with vLLM's CPU build (`make test-vllm`).

They run in the vLLM venv only (make install-vllm); `make test` in the main venv does not collect
this directory (pyproject's norecursedirs). Here vllm must import: every test fails when it does not,
so a broken install is never reported as a pass or a skip.

Fixtures (one toy world and one trained checkpoint per session, shared by every test):
    world     toy data with the whole held-out set (500 eval prompts) and a bigger cold-start set
    solver    a cold-started toy checkpoint that solves part of the eval set (pass@1 well above 0)
    vllm_env  the environment for a subprocess that starts vLLM on the CPU
    r1_shared_vllm  `r1 ARGS` in the pytest process, where every `--backend vllm` generator of one
              checkpoint is the same vLLM engine (started once a session: start-ups are most of the
              suite's time); what differs from a subprocess run is only that the engine is reused

To rerun a test against a world and checkpoint built before (what the fixtures below build), set
R1_VLLM_WORLD=DATA_DIR and R1_VLLM_SOLVER=CHECKPOINT_DIR (its toy base beside it, in ../base).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:
    import vllm  # noqa: F401

    VLLM_ERROR = None
except Exception as e:  # an ImportError, or a broken build failing inside its own import
    VLLM_ERROR = f"{type(e).__name__}: {e}"

# KV cache on the CPU, in GiB (vLLM's CPU default is 4 per engine); a toy model needs far less
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")



def _r1(*args) -> None:
    """`r1 ARGS` in this process (for the fixtures: no vLLM inside)."""
    from r1cli.cli import main

    main([str(a) for a in args])


# 500 eval prompts: pass@1 of two backends is compared on them. Clean cold-start CoTs: the demo's corrupted
# ones make a cold start of ~20-25% pass@1 on the toy's larger task (a, b <= 30, c <= 9), too near the
# comparison's 0.2 floor; with 2% / 4% corrupted digits the demo's cold start reached 61.7% (seed 0)
WORLD_SET = ["n_rl=400", "n_coldstart=4000", "n_eval=500", "n_general=120", "n_general_eval=40",
             "n_helpful_pairs=120", "n_helpful_pairs_eval=40", "n_safety=120", "coldstart_corruption=0",
             "coldstart_corruption_zh=0"]
# the toy base as `r1 toy base` built it before its 3000 steps (4 layers, hidden 128, 2.46M pretraining tokens in
# 2400 steps of 4 x 256, fp32): a problem's operands are copied only after 1.4M-2.1M tokens (r1cli/toy/corpus.py),
# and before that no cold start learns the task (a 0.3M-token base: 1.1-1.2% pass@1 after cold starts of 1500 x 2
# and 4000 x 3). These tests need operands copied (seed 0: 95%), not words, so they keep the shorter base
SOLVER_BASE_SET = ["eval_prompts=0", "precision=fp32", "num_layers=4", "attempts=1"]
SOLVER_BASE_STEPS = 2400
# one epoch over the 4000 cold-start rows (125 steps): measured 49.0% pass@1 (200 eval prompts x 1, T 0.6) on
# the character-level base and the smaller task, well above the backend comparison's 0.2 floor
SOLVER_SET = ["trl.num_train_epochs=1", "trl.per_device_train_batch_size=8", "trl.save_strategy='no'"]


@pytest.fixture(scope="session", autouse=True)
def vllm_importable():
    if VLLM_ERROR:
        pytest.fail(f"vllm cannot be imported in this venv ({VLLM_ERROR}): run these tests with `make test-vllm`, "
                    "which builds the vLLM venv", pytrace=False)


def _sets(values):
    return [x for s in values for x in ("--set", s)]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    if os.environ.get("R1_VLLM_WORLD"):
        return Path(os.environ["R1_VLLM_WORLD"])
    out = tmp_path_factory.mktemp("vworld") / "data"
    _r1("toy", "data", out, "--seed", 0, *_sets(WORLD_SET))
    return out


@pytest.fixture(scope="session")
def solver(world, tmp_path_factory) -> Path:
    """Toy base (2400 steps, fp32) + cold start: a checkpoint that solves part of the toy eval set."""
    if os.environ.get("R1_VLLM_SOLVER"):
        return Path(os.environ["R1_VLLM_SOLVER"])
    root = tmp_path_factory.mktemp("vsolver")
    # nothing runs beside these two: they get both threads (the base 1.45x faster than on one, as in make demo)
    _r1("toy", "base", root / "base", "--seed", 0, "--steps", SOLVER_BASE_STEPS, *_sets(SOLVER_BASE_SET))
    _r1("coldstart", "--model", root / "base", "--data", world / "coldstart", "--out", root / "coldstart",
        "--recipe", REPO / "recipes/toy/coldstart.yaml", *_sets(SOLVER_SET))
    return root / "coldstart"


class _Result:
    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture(scope="session")
def r1_shared_vllm():
    """Run `r1 ARGS` in this process; its vllm generators come from one engine per (checkpoint, arguments).

    The stages call `load_generator(model, backend=...)`; for backend "vllm" the first call of a session
    builds the generator as r1cli does (load_generator itself), later calls with the same checkpoint and
    arguments get that generator back. Any other backend, or other arguments, goes through unchanged."""
    import contextlib
    import io

    import torch

    import r1cli.generation as generation
    from r1cli.cli import main
    from r1cli.generation import judge
    from r1cli.stages import evaluate, reject_sample

    real = generation.load_generator
    engines: dict = {}
    starts = []

    def shared(model, backend="transformers", **kw):
        if backend != "vllm" or isinstance(model, (tuple, list)):
            return real(model, backend=backend, **kw)
        key = (str(Path(model).resolve()), tuple(sorted(kw.items())))
        if key not in engines:
            starts.append(key)
            engines[key] = real(model, backend=backend, **kw)
        return engines[key]

    mp = pytest.MonkeyPatch()
    for mod in (evaluate, reject_sample, judge):
        mp.setattr(mod, "load_generator", shared)
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.setenv("TOKENIZERS_PARALLELISM", "false")

    def run(*args) -> _Result:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        err = io.StringIO()
        code = 0
        try:
            with contextlib.redirect_stderr(err):
                main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        finally:
            torch.set_num_threads(threads)
        print(err.getvalue(), file=__import__("sys").stderr)
        return _Result(code, err.getvalue())

    run.starts = starts
    yield run
    mp.undo()
    engines.clear()


@pytest.fixture
def vllm_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="session")
def rms(solver, world, tmp_path_factory) -> tuple[Path, Path]:
    """Two reward models for r1 align (a few steps each: they only have to load and score)."""
    d = tmp_path_factory.mktemp("vrms")
    fast = _sets(["trl.max_steps=3", "trl.per_device_train_batch_size=8", "trl.logging_steps=1", "eval_fraction=0.1",
                  "trl.save_strategy='no'"])
    base = solver.parent / "base"
    _r1("rm", "--model", base, "--data", world / "helpful_pairs", "--out", d / "helpful", *fast)
    _r1("rm", "--pointwise", "--model", base, "--data", world / "safety", "--out", d / "safety", *fast)
    return d / "helpful", d / "safety"
