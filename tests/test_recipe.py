"""Recipe resolution: defaults < YAML < --set < flags, typed, unknown keys refused."""

import dataclasses
from pathlib import Path

import pytest

from r1cli.config import STAGES, EvalConfig, GRPOStageConfig, SFTStageConfig, ToyDataConfig
from r1cli.errors import UserError
from r1cli.recipe import load_yaml, resolve, resolve_stage, to_dict

ROOT = Path(__file__).resolve().parent.parent / "recipes"
# stage recipes; a claims file (r1 report --claims) is checked by test_every_claims_file_loads
CLAIM_FILES = sorted(ROOT.rglob("claims*.yaml"))
RECIPES = sorted(p for p in ROOT.rglob("*.yaml") if "accelerate" not in p.parts and p not in CLAIM_FILES)
ACCELERATE = sorted((ROOT / "accelerate").glob("*.yaml"))


def write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_precedence_defaults_recipe_set_flags(tmp_path):
    r = write(tmp_path, "k: 8\nsampling:\n  temperature: 0.7\n")
    cfg = resolve(EvalConfig, r, ["sampling.top_p=0.9", "k=6"], {"k": 2, "seed": None})
    assert cfg.k == 2  # flag beats --set beats recipe
    assert cfg.sampling.temperature == 0.7
    assert cfg.sampling.top_p == 0.9
    assert cfg.sampling.max_new_tokens == EvalConfig().sampling.max_new_tokens
    assert cfg.seed == 0  # a None flag means "not given"


def test_unknown_key_names_closest(tmp_path):
    r = write(tmp_path, "sampling:\n  temprature: 0.7\n")
    with pytest.raises(UserError, match="sampling.temprature.*temperature"):
        resolve(EvalConfig, r)
    with pytest.raises(UserError, match="unknown recipe key 'kk'"):
        resolve(EvalConfig, None, ["kk=3"])


def test_set_types_checked():
    with pytest.raises(UserError, match="k must be an integer"):
        resolve(EvalConfig, None, ["k=abc"])
    with pytest.raises(UserError, match="template must be one of"):
        resolve(EvalConfig, None, ["template=chatml"])
    with pytest.raises(UserError, match="key=value"):
        resolve(EvalConfig, None, ["k"])
    assert resolve(ToyDataConfig, None, ["zh_fraction=1"]).zh_fraction == 1.0


def test_trl_section_checked_against_trl_class(tmp_path):
    cfg = resolve(SFTStageConfig, None, ["trl.learning_rate=3e-4", "trl.num_train_epochs=2"])
    assert cfg.trl == {"learning_rate": 3e-4, "num_train_epochs": 2.0}
    with pytest.raises(UserError, match="trl.learnig_rate.*learning_rate"):
        resolve(SFTStageConfig, None, ["trl.learnig_rate=1e-5"])
    with pytest.raises(UserError, match="trl.num_train_epochs must be a number"):
        resolve(SFTStageConfig, None, ["trl.num_train_epochs=lots"])
    res = resolve_stage(SFTStageConfig, None, ["trl.learning_rate=3e-4", "trl.num_train_epochs=2"], out=tmp_path / "o",
                        trainer=True)
    assert res.config == cfg and res.trl.learning_rate == 3e-4 and res.trl.num_train_epochs == 2.0
    assert res.trl.output_dir == str(tmp_path / "o.partial" / "trainer")
    assert ("trl.learning_rate", 3e-4, "--set") in res.trl_rows


@pytest.mark.parametrize("setting, message", [
    ("trl.learning_rate=-1e-5", "trl.learning_rate must be >= 0, got -1e-05"),
    ("trl.max_grad_norm=-1", "trl.max_grad_norm must be >= 0, got -1.0"),
    ("trl.weight_decay=-0.1", "trl.weight_decay must be >= 0, got -0.1"),
    ("trl.num_train_epochs=-2", "trl.num_train_epochs must be >= 0, got -2.0"),
    ("trl.max_steps=0", "trl.max_steps must be >= 1 (or -1: train num_train_epochs), got 0"),
    ("trl.top_p=1.5", "trl.top_p must be in (0, 1], got 1.5"),
])
def test_trl_numbers_out_of_range_are_refused_when_the_recipe_resolves(setting, message):
    with pytest.raises(UserError) as e:
        resolve(GRPOStageConfig, None, [setting])
    assert str(e.value) == message


def test_each_stage_sets_its_trl_defaults_and_fixed_values(tmp_path):
    from r1cli.config import AlignConfig, RMConfig

    sft = resolve_stage(SFTStageConfig, out=tmp_path / "s", trainer=True).trl
    assert (sft.lr_scheduler_type.value, sft.save_strategy.value, sft.completion_only_loss) == ("cosine", "epoch", True)
    grpo = resolve_stage(GRPOStageConfig, None, ["rewards={accuracy: 2, format: 0.5}"], out=tmp_path / "g", trainer=True)
    assert grpo.trl.reward_weights == [2.0, 0.5] and grpo.trl.save_steps == 50 and grpo.trl.temperature == 1.0
    align = resolve_stage(AlignConfig, out=tmp_path / "a", trainer=True).trl
    # stage 4: the paper's temperature 0.7, each reward normalized in its group, TRL's shuffle off (r1 align orders)
    assert (align.temperature, align.multi_objective_aggregation, align.shuffle_dataset) == (0.7, "normalize_then_sum", False)
    assert resolve_stage(RMConfig, out=tmp_path / "r", trainer=True).trl.save_steps == 200


def test_a_run_of_zero_steps_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(UserError, match="trains zero steps"):
        resolve_stage(SFTStageConfig, None, ["trl.num_train_epochs=0"], out=tmp_path / "o", trainer=True)
    assert resolve_stage(SFTStageConfig, None, ["trl.num_train_epochs=0", "trl.max_steps=3"], out=tmp_path / "o",
                         trainer=True).trl.max_steps == 3


def test_trl_rules_of_its_own_fire_when_the_recipe_resolves(tmp_path):
    """TRL's __post_init__ (a generation batch divisible by num_generations) runs with the recipe, not the stage."""
    with pytest.raises(UserError, match="the trl settings do not fit together"):
        resolve_stage(GRPOStageConfig, None, ["trl.per_device_train_batch_size=6", "trl.num_generations=4"],
                      out=tmp_path / "o", trainer=True)


def test_trl_section_refused_where_stage_has_no_trl():
    with pytest.raises(UserError, match="unknown recipe key 'trl'"):
        resolve(EvalConfig, None, ["trl.beta=0.1"])


def test_recipe_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(UserError, match="must be a mapping"):
        load_yaml(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(UserError, match="is for stage 'sft', not 'eval'"):
        resolve(EvalConfig, write(tmp_path, "stage: sft\n"), stage="eval")


def test_resolved_config_is_plain_data():
    d = to_dict(resolve(EvalConfig, None, ["k=3"]))
    assert d["k"] == 3 and d["sampling"]["top_p"] == 0.95
    assert dataclasses.is_dataclass(resolve(EvalConfig)) and "TRL_CONFIG" not in to_dict(resolve(SFTStageConfig))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_recipe_validates(path):
    """Each recipe names its stage and resolves against that stage's config class."""
    data = load_yaml(path)
    assert "stage" in data, f"{path} must say which stage it is for (stage: NAME)"
    assert data["stage"] in STAGES, f"{path}: unknown stage {data['stage']!r}"
    resolve(STAGES[data["stage"]], path, stage=data["stage"])


def test_accelerate_configs_exist_and_parse():
    names = {p.stem for p in ACCELERATE}
    assert {"ddp", "zero2", "zero3", "fsdp"} <= names
    for p in ACCELERATE:
        assert "distributed_type" in load_yaml(p)


def test_set_on_a_mapping_updates_key_by_key(tmp_path):
    from r1cli.config import GRPOStageConfig

    r = write(tmp_path, "rewards: {accuracy: 1.0, format: 1.0}\n")
    cfg = resolve(GRPOStageConfig, r, ["reward_options.a=1", "reward_options.b=2", "rewards.language=0.5"])
    assert cfg.reward_options == {"a": 1, "b": 2}
    assert cfg.rewards == {"accuracy": 1.0, "format": 1.0, "language": 0.5}


def test_every_commands_set_example_is_a_key_it_accepts():
    """`r1 CMD --help` shows a --set example; the command's own config must take it (score has no trl:)."""
    import shlex

    from typer.main import get_command

    from r1cli.cli import app

    stage_of = {"coldstart": "coldstart", "sft": "sft", "grpo": "grpo", "reject-sample": "reject-sample", "eval": "eval",
                "score": "score", "rm": "rm", "align": "align", "toy data": "toy-data", "toy base": "toy-base"}
    commands = get_command(app).commands
    for name, stage in stage_of.items():
        words = name.split()
        cmd = commands[words[0]].commands[words[1]] if len(words) == 2 else commands[words[0]]
        help_text = next(p.help for p in cmd.params if p.name == "set_")
        example = shlex.split(help_text.split("--set ", 1)[1].rsplit(" (repeatable)", 1)[0])[0]
        resolve(STAGES[stage], None, [example], stage=stage)


@pytest.mark.parametrize("path", CLAIM_FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_claims_file_loads(path):
    from r1cli.claims import load_claims
    from r1cli.report_render import ROLES

    assert load_claims(path, tuple(r for r, _ in ROLES))
