"""Every setting of every stage is checked when the recipe is resolved: before the stage's module is
imported, before any model or tokenizer loads, before OUT or OUT.partial exists.

The cases are generated from the config dataclasses (r1cli/config.py STAGES), not written by hand:
each field gets a value outside its range where it has one (`setting(..., ge=...)`), else a value
of the wrong type, through `--set` on the real command line, with every other input valid. The
`trl:` section is TRL's own class, checked by its __post_init__ (tests/test_recipe.py covers it).

    pytest tests/test_settings.py
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from r1cli import stages
from r1cli.cli import main
from r1cli.config import STAGES
from r1cli.recipe import _hints

# the command line of each stage, every input valid (the setting's error must be the one found)
COMMANDS = {
    "coldstart": "coldstart --model {base} --data {data}/coldstart --out {out}",
    "sft": "sft --model {base} --data {data}/coldstart --out {out}",
    "grpo": "grpo --model {base} --data {data}/rl --out {out}",
    "align": "align --model {base} --data {data}/rl --data {data}/general --out {out}",
    "rm": "rm --model {base} --data {data}/helpful_pairs --out {out}",
    "reject-sample": "reject-sample --model {base} --data {data}/rl --out {out}",
    "eval": "eval --model {base} --data {data}/eval --out {out}",
    "score": "score {data}/eval --out {out}",
    "toy-data": "toy data {out}",
    "toy-base": "toy base {out}",
}


def _leaves(cls, prefix: str = ""):
    """(dotted key, annotation, field) of every setting under `cls`, nested sections included."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "trl":
            continue
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            yield from _leaves(t, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", t, f


def _outside(bounds: dict, t) -> object:
    """A value just outside the range."""
    is_int = int in (typing.get_args(t) or (t,)) or typing.get_origin(t) is list and int in typing.get_args(t)
    step = 1 if is_int else 0.5
    if "ge" in bounds:
        v = bounds["ge"] - step
    elif "gt" in bounds:
        v = bounds["gt"]
    elif "le" in bounds:
        v = bounds["le"] + step
    else:
        v = bounds["lt"]
    return [v] if typing.get_origin(t) is list or list in typing.get_args(t) and float not in typing.get_args(t) else v


def _wrong_type(t) -> object:
    """A value of the wrong type for the annotation `t`."""
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if typing.get_origin(t) is typing.Literal:
        return "no-such-choice"
    inner = args[0] if len(args) == 1 and typing.get_origin(t) in (typing.Union, type(int | None)) else t
    if typing.get_origin(inner) is typing.Literal:
        return "no-such-choice"
    if inner in (int, float):
        return "not-a-number"
    if inner is bool:
        return "maybe"
    if inner is str:
        return [1, 2]
    return 5  # a list or a mapping given a number


def cases():
    for stage, cls in STAGES.items():
        for key, t, f in _leaves(cls):
            bounds = f.metadata.get("range")
            value = _outside(bounds, t) if bounds else _wrong_type(t)
            yield pytest.param(stage, key, value, id=f"{stage}:{key}")


@pytest.fixture(scope="module")
def guarded(toy_base, toy_data):
    """Paths of the toy world; any model, tokenizer or stage module load fails the test."""
    return {"base": toy_base, "data": toy_data}


@pytest.mark.parametrize("stage,key,value", list(cases()))
def test_a_bad_setting_exits_2_before_anything_loads(stage, key, value, guarded, tmp_path, capsys, monkeypatch):
    import transformers

    def never(*a, **k):
        raise AssertionError(f"{key}={value!r} was not caught before something loaded")

    monkeypatch.setattr(stages, "load", never)
    for cls in ("AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoTokenizer"):
        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", never)
    out = tmp_path / "out"
    argv = COMMANDS[stage].format(out=out, **guarded).split() + ["--set", f"{key}={value!r}" if isinstance(value, str)
                                                                  else f"{key}={value}"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert key in err, f"the message does not name {key}: {err}"
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_every_stage_has_a_command_here():
    assert set(STAGES) == set(COMMANDS)


def test_every_ranged_field_has_a_case():
    """The ranges are where the rules live: each stage has some, and nested ones are reached."""
    keys = {key for stage, cls in STAGES.items() for key, _, f in _leaves(cls) if f.metadata.get("range")}
    assert {"eval.sampling.top_p", "eval.k", "filters.min_repetition", "judge.timeout_s", "sampling.top_p"} <= keys
