"""Recipes: YAML file + `--set key=value` overrides + explicit flags -> a typed stage config and, for
a trainer stage, its built TRL config (`resolve_stage` -> Resolved: config, sources, trl).

Order of precedence (later wins): the config dataclass defaults, `--recipe FILE.yaml`,
`--set dotted.key=value` (values parsed as YAML, then checked against the field's type),
explicit CLI flags. A `trl:` section passes through to the TRL config object
(`SFTConfig`, `GRPOConfig`, ...) and is checked against that class's fields; a `peft:` section
likewise against PEFT's `LoraConfig` (r1cli/training/lora.py). An unknown key anywhere is a UserError
naming the key and the closest valid one.

The config classes of every stage live in `r1cli/config.py`; `STAGES` there maps a stage
name to its class, and a recipe may say `stage: NAME` to be checked against it.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from r1cli.config import LORA_BOUNDS, LORA_NOT_SETTABLE, LORA_OWN_KEYS
from r1cli.errors import UserError
from r1cli.settings import ConfigError, field_default, in_range, range_text
from r1cli.training.args import build as build_trl_config

# Ranges of TRL's numeric settings, which TRL itself checks few of: a negative learning rate would fail in
# torch's optimizer after the model loaded, a negative max_grad_norm would train without a word. The counts
# are divided by in TRL's __post_init__ (a 0 would be a ZeroDivisionError there).
_COUNT = {"ge": 1}
TRL_RANGES = {
    "per_device_train_batch_size": _COUNT, "per_device_eval_batch_size": _COUNT, "gradient_accumulation_steps": _COUNT,
    "num_generations": _COUNT, "generation_batch_size": _COUNT, "steps_per_generation": _COUNT,
    "num_iterations": _COUNT, "logging_steps": {"gt": 0}, "save_steps": {"gt": 0}, "max_length": _COUNT,
    "max_prompt_length": _COUNT, "max_completion_length": _COUNT, "learning_rate": {"ge": 0},
    "weight_decay": {"ge": 0}, "max_grad_norm": {"ge": 0}, "num_train_epochs": {"ge": 0}, "warmup_steps": {"ge": 0},
    "adam_beta1": {"ge": 0, "lt": 1}, "adam_beta2": {"ge": 0, "lt": 1}, "adam_epsilon": {"ge": 0},
    "temperature": {"ge": 0}, "top_p": {"gt": 0, "le": 1}, "beta": {"ge": 0}, "epsilon": {"ge": 0},
    "epsilon_high": {"ge": 0}, "seed": {"ge": 0}, "data_seed": {"ge": 0},
}


def _closest(key: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {near[0]!r}?)" if near else f" (valid: {', '.join(sorted(valid)[:12])}{', ...' if len(valid) > 12 else ''})"


def _trl_class(name: str | None):
    if not name:
        return None
    import trl

    return getattr(trl, name)


def _hints(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # TRL/transformers annotations may name types we cannot resolve
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _type_name(t) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def coerce(value: Any, typ: Any, key: str) -> Any:
    """Check (and gently convert) `value` against the annotation `typ`; UserError if it does not fit."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any or typ is object or isinstance(typ, str):
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except UserError as e:
                errors.append(e)
        raise UserError(f"{key} must be {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise UserError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{key} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"{key} must be an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 3e-6 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{key} must be a number, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key} must be a string, got {value!r}")
    if origin in (list, tuple) or typ in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key} must be a mapping, got {value!r}")
        kt, vt = args if len(args) == 2 else (Any, Any)
        return {coerce(k, kt, f"{key} key"): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise UserError(f"{key} must be a mapping, got {value!r}")
        return value
    if isinstance(typ, type) and issubclass(typ, __import__("enum").Enum):
        try:
            return typ(value).value
        except ValueError:
            raise UserError(f"{key} must be one of {', '.join(repr(m.value) for m in typ)}, got {value!r}") from None
    return value


def _check_trl(section: Any, trl_name: str | None, prefix: str) -> dict:
    if not isinstance(section, dict):
        raise UserError(f"{prefix} must be a mapping of {trl_name or 'TRL'} fields, got {section!r}")
    cls = _trl_class(trl_name)
    if cls is None:
        if section:
            raise UserError(f"{prefix} is not used by this stage: remove it")
        return {}
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    out = {}
    for k, v in section.items():
        if k not in names:
            raise UserError(f"unknown key {prefix}.{k} for trl.{trl_name}{_closest(k, names)}")
        out[k] = coerce(v, hints.get(k, Any), f"{prefix}.{k}")
        bounds = TRL_RANGES.get(k)
        if bounds and isinstance(out[k], (int, float)) and not isinstance(out[k], bool) and not in_range(out[k], bounds):
            raise ConfigError(f"{prefix}.{k}", range_text(bounds), out[k])
        if k == "max_steps" and isinstance(out[k], int) and out[k] != -1 and out[k] < 1:
            raise ConfigError(f"{prefix}.{k}", "must be >= 1 (or -1: train num_train_epochs)", out[k])
    return out


def _check_peft(section: Any, prefix: str) -> dict:
    """A `peft:` section: LoraConfig's fields (task_type is the stage's) plus r1cli's own keys."""
    if not isinstance(section, dict):
        raise UserError(f"{prefix} must be a mapping of LoraConfig fields (e.g. {{r: 16, lora_alpha: 32}}), got {section!r}")
    if not section:
        return {}
    try:
        from peft import LoraConfig
    except ImportError:
        raise UserError(f"{prefix} (LoRA) needs the peft package: pip install 'r1cli[peft]'") from None
    hints = {**_hints(LoraConfig), **LORA_OWN_KEYS}
    names = [f.name for f in dataclasses.fields(LoraConfig) if f.init and f.name not in LORA_NOT_SETTABLE]
    names += list(LORA_OWN_KEYS)
    out = {}
    for k, v in section.items():
        if k in LORA_NOT_SETTABLE:
            raise UserError(f"{prefix}.{k} is set by r1cli or PEFT, not by a recipe: remove it")
        if k not in names:
            raise UserError(f"unknown key {prefix}.{k} for LoraConfig{_closest(k, names)}")
        out[k] = coerce(v, hints.get(k, Any), f"{prefix}.{k}")
        bounds = LORA_BOUNDS.get(k)
        if bounds and isinstance(out[k], (int, float)) and not in_range(out[k], bounds):
            raise ConfigError(f"{prefix}.{k}", range_text(bounds), out[k])
    return out


def _merge(cls, base: dict, update: dict, prefix: str = "") -> dict:
    """Merge `update` into `base` (both plain dicts) following the dataclass `cls`."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    trl_name = getattr(cls, "TRL_CONFIG", None)
    for k, v in update.items():
        key = f"{prefix}{k}"
        if k not in fields:
            raise UserError(f"unknown recipe key {key!r}{_closest(k, list(fields))}")
        t = hints.get(k, Any)
        if k == "trl":
            base[k] = {**base.get(k, {}), **_check_trl(v, trl_name, key)}
        elif k == "peft":
            base[k] = {**base.get(k, {}), **_check_peft(v, key)}
        elif dataclasses.is_dataclass(t):
            if not isinstance(v, dict):
                raise UserError(f"{key} must be a mapping, got {v!r}")
            base[k] = _merge(t, base.get(k, {}), v, key + ".")
        elif isinstance(base.get(k), dict) and isinstance(v, dict):
            # a mapping value (rewards, reward_options) is updated key by key, so that
            # `--set reward_options.a=1 --set reward_options.b=2` keeps both
            base[k] = {**base[k], **coerce(v, t, key)}
        else:
            base[k] = coerce(v, t, key)
    return base


def _build(cls, values: dict, prefix: str = "", base=None):
    """The config object: nested sections start from the stage's own default for them (the `eval:` of
    `r1 sft` evaluates k=1 on 200 prompts unless told otherwise), and every class checks its fields
    as it is made; an error names the setting by its whole dotted path."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        t = hints.get(f.name)
        if dataclasses.is_dataclass(t):
            inner = getattr(base, f.name) if base is not None else field_default(f)
            kwargs[f.name] = _build(t, values[f.name], f"{prefix}{f.name}.", inner)
        else:
            kwargs[f.name] = values[f.name]
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except ConfigError as e:
        raise e.under(prefix) from None


def _dotted(key: str, value: Any) -> dict:
    out: dict = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"recipe {p} does not exist: check the --recipe path")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"recipe {p}{where} is not valid YAML: fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"recipe {p} must be a mapping of keys to values")
    return data


@dataclasses.dataclass
class Resolved:
    """A resolved stage: its config, where each setting came from (the recipe file, --set or a flag), and
    for a trainer stage the TRL config built from it with that table's rows (`trl_rows`)."""

    config: Any
    sources: dict[str, str]
    trl: Any = None
    trl_rows: list = dataclasses.field(default_factory=list)


def resolve(cls, recipe: str | Path | None = None, sets: list[str] | None = None, flags: dict | None = None,
            stage: str | None = None, flag_names: dict | None = None):
    """The stage config alone (resolve_stage without the TRL config)."""
    return resolve_stage(cls, recipe, sets, flags, stage, flag_names).config


def resolve_stage(cls, recipe: str | Path | None = None, sets: list[str] | None = None, flags: dict | None = None,
                  stage: str | None = None, flag_names: dict | None = None, out: Path | None = None,
                  trainer: bool = False) -> Resolved:
    """Resolve a stage config: defaults < recipe < --set < explicit flags (None = not given).

    The whole tree is checked here (types, ranges, the rules between fields) before the command
    does anything else; with `trainer`, the stage's TRL config is built too (its output dir inside
    `out`), with every check that needs it (r1cli/training/args.py). An error in a setting given as a
    flag names the flag (`--k`, or `flag_names[key]`)."""
    values: dict = {}
    sources: dict[str, str] = {}
    if recipe is not None:
        data = load_yaml(recipe)
        named = data.pop("stage", None)
        if named is not None and stage is not None and named != stage:
            raise UserError(f"recipe {recipe} is for stage {named!r}, not {stage!r}: pick the {stage} recipe")
        values = _merge(cls, values, data)
        sources.update(dict.fromkeys(_leaves(data), f"recipe {Path(recipe).name}"))
    for s in sets or []:
        if "=" not in s:
            raise UserError(f"--set {s!r} must look like key=value (e.g. --set trl.learning_rate=1e-5)")
        key, raw = s.split("=", 1)
        try:
            val = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            val = raw
        values = _merge(cls, values, _dotted(key.strip(), val))
        sources.update(dict.fromkeys(_leaves(_dotted(key.strip(), val)), "--set"))
    names = {}
    for key, val in (flags or {}).items():
        if val is not None:
            values = _merge(cls, values, _dotted(key, val))
            names[key] = (flag_names or {}).get(key) or "--" + key.split(".")[-1].replace("_", "-")
            sources.update(dict.fromkeys(_leaves(_dotted(key, val)), names[key]))
    try:
        cfg = _build(cls, values)
    except ConfigError as e:
        if e.key in names:
            raise ConfigError(names[e.key], e.rule, e.value) from None
        raise
    res = Resolved(cfg, sources)
    if trainer:
        res.trl, res.trl_rows = build_trl_config(cfg, sources, out)
    return res


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        if isinstance(v, dict) and v and k not in ("rewards", "reward_options", "verifiers"):
            out += _leaves(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}")
    return out


def changed_settings(res: Resolved) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) of every setting that differs from the stage's default, where
    source is the recipe file, --set or the flag that gave it (TRL keys: res.trl_rows)."""
    sources, cfg = res.sources, res.config
    out = []

    def walk(obj, default, prefix):
        for f in dataclasses.fields(obj):
            if f.name == "trl":
                continue
            if f.name == "peft":  # one row per LoRA setting
                out.extend((f"peft.{k}", v, sources.get(f"peft.{k}", "?")) for k, v in obj.peft.items())
                continue
            v, d = getattr(obj, f.name), getattr(default, f.name, None)
            key = prefix + f.name
            if dataclasses.is_dataclass(v):
                walk(v, d if dataclasses.is_dataclass(d) else v, key + ".")
            elif v != d:
                out.append((key, v, sources.get(key, next((s for k, s in sources.items() if key.startswith(k + ".")), "?"))))

    walk(cfg, type(cfg)(), "")
    return out


def show_settings(rows: list[tuple[str, Any, str]], title: str) -> None:
    """Print (setting, value, source) rows, one per line: the handoff a stage starts with (rank 0
    only). On stdout, with the stage's results: stderr keeps progress and errors."""
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    if not rows:
        print(f"{title}: none", flush=True)
        return
    width = max(len(f"{k} = {v}") for k, v, _ in rows)
    lines = [f"  {f'{k} = {v}':<{width}}  ({source})" for k, v, source in rows]
    print("\n".join([f"{title}:", *lines]), flush=True)


def show_changed_settings(res: Resolved, command: str) -> None:
    """The handoff: the stage's settings that differ from its defaults and who set each (recipe, --set, a
    flag); for a trainer stage, then its TRL config's values that differ from TRL's defaults."""
    show_settings(changed_settings(res), f"r1 {command}: settings that differ from the stage's defaults")
    if res.trl is not None:
        name = getattr(res.config, "algorithm", None)
        title = f"{type(res.trl).__name__}: what differs from TRL's defaults"
        show_settings(res.trl_rows, title + (f", and algorithm preset {name}" if name else ""))


def to_dict(cfg) -> dict:
    """The fully resolved config, for the manifest."""
    return dataclasses.asdict(cfg)
