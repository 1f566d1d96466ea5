"""The reward docstrings: every registered reward documents its arguments with a `>>>` example, and the
examples run (doctest) and show what they claim.

    PYTHONPATH=$PWD python -m pytest tests/test_reward_docs.py -q
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

from r1cli.rewards import REWARDS, _target

# the registry's own module (get_reward) plus every module a registered reward lives in: a reward
# added to REWARDS brings its module here, so its examples run too
MODULES = sorted({"r1cli.rewards"} | {factory.path.split(":")[0] for factory in REWARDS.values()})


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_every_registered_reward_has_args_and_an_example(name):
    fn = _target(REWARDS[name])
    assert fn is not None, f"{REWARDS[name].path} does not import"
    doc = inspect.getdoc(fn) or ""
    assert "Args:" in doc, f"{name}: the docstring of {REWARDS[name].path} has no Args: block"
    for arg in ("prompts", "completions"):
        assert arg in doc.split("Args:", 1)[1], f"{name}: its Args: block does not say what it does with {arg}"
    assert doctest.DocTestParser().get_examples(doc), f"{name}: the docstring of {REWARDS[name].path} has no >>> example"


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module, capsys):
    # testmod prints each failing example with what it got; pytest shows that output on failure
    result = doctest.testmod(importlib.import_module(module))
    out = capsys.readouterr().out
    assert result.attempted > 0, f"{module} has no >>> examples left"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module} failed:\n{out}"
