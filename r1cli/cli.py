"""The `r1` command: one thin typer command per stage, nothing else.

Each command resolves its recipe (r1cli.recipe) and calls one stage function; heavy
imports (torch, transformers, trl) happen inside the command so `r1 --help` is fast.
A user's mistake (UserError, or a usage error) prints one line and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
# typer >= 0.20 vendors click as typer._click: its exceptions are the ones raised here
from typer import _click as click

from r1cli import __version__
from r1cli.errors import UserError

app = typer.Typer(
    name="r1",
    help="The DeepSeek-R1 training recipe as command-line stages. Each stage reads dataset and "
    "checkpoint dirs and writes one new dir (see README).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect, export, import and merge datasets.", no_args_is_help=True)
toy_app = typer.Typer(help="Build the toy world: synthetic tasks and a tiny base model.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(toy_app, name="toy")

# --- shared options ----------------------------------------------------------------------

RecipeOpt = typer.Option(None, "--recipe", help="Recipe YAML (recipes/toy/*.yaml, recipes/<model>/*.yaml).")
SetOpt = typer.Option(None, "--set", help="Override a recipe key: --set trl.learning_rate=1e-5 (repeatable).")
ForceOpt = typer.Option(False, "--force", help="Replace OUT if it exists.")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.partial/.")


def _version(value: bool):
    if value:
        typer.echo(f"r1cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")):
    pass


def _not_yet(name: str, issue: int):
    def command(ctx: typer.Context):
        raise UserError(f"r1 {name} is not implemented yet (issue {issue})")

    command.__doc__ = f"(not implemented yet: issue {issue})"
    return command


_UNBUILT = {
    "coldstart": ("Stage 1: SFT the base model on long-CoT cold-start data.", 4),
    "sft": ("Stage 3: SFT the base (or a student) on rejection-sampled + general data.", 4),
    "grpo": ("R1-Zero / stage 2: GRPO with rule rewards.", 5),
    "reject-sample": ("Stage 3a/3b: sample, verify and filter completions into SFT data.", 6),
    "align": ("Stage 4: all-scenario GRPO with routed rule and reward-model rewards.", 7),
    "rm": ("Train a helpfulness (pairwise) or harmlessness (pointwise) reward model.", 7),
    "eval": ("pass@1 over k samples, cons@k, format and language rates of a checkpoint.", 3),
    "score": ("Score a dataset of completions with named rewards.", 3),
    "report": ("One page with every stage's numbers and plots.", 8),
}


def _register_unbuilt():
    registered = {c.name for c in app.registered_commands}
    for name, (help_, issue) in _UNBUILT.items():
        if name not in registered:
            app.command(name, help=f"{help_} (not implemented yet: issue {issue})",
                        context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_not_yet(name, issue))


# --- toy world ---------------------------------------------------------------------------


@toy_app.command("data")
def toy_data(
    out: Path = typer.Argument(..., help="Output dir; gets rl/, coldstart/, eval/, general/, helpful_pairs/, safety/."),
    seed: Optional[int] = typer.Option(None, help="Seed (same seed, same data)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = SetOpt,
    force: bool = ForceOpt,
):
    """Write the synthetic toy task world (English and Chinese arithmetic word problems)."""
    from r1cli.config import ToyDataConfig
    from r1cli.recipe import resolve

    cfg = resolve(ToyDataConfig, recipe, set_, {"seed": seed}, stage="toy-data")
    from r1cli.data import toy

    toy.make_toy_data(cfg, out, force=force)


@toy_app.command("base")
def toy_base(
    out: Path = typer.Argument(..., help="Output checkpoint dir (an ordinary HF model dir)."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    steps: Optional[int] = typer.Option(None, help="Pretraining steps."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = SetOpt,
    force: bool = ForceOpt,
):
    """Train a tokenizer and a tiny Qwen2 base model from scratch on a toy corpus."""
    from r1cli.config import ToyBaseConfig
    from r1cli.recipe import resolve

    cfg = resolve(ToyBaseConfig, recipe, set_, {"seed": seed, "steps": steps}, stage="toy-base")
    from r1cli.data import toy_base as tb

    tb.make_toy_base(cfg, out, force=force)


# --- stages 1 and 3: SFT ----------------------------------------------------------------------


def _sft_command(stage: str):
    def command(
        model: Path = typer.Option(..., "--model", help="Base (or student) model dir: any HF causal-LM checkpoint."),
        data: List[Path] = typer.Option(..., "--data", help="SFT dataset (dir, JSONL or Parquet with `messages`); repeatable."),
        out: Path = typer.Option(..., "--out", help="Output checkpoint dir."),
        eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Prompts to evaluate the model on before and after (prints both)."),
        recipe: Optional[Path] = RecipeOpt,
        set_: Optional[List[str]] = SetOpt,
        force: bool = ForceOpt,
        resume: bool = ResumeOpt,
    ):
        from r1cli.config import SFTStageConfig
        from r1cli.recipe import resolve

        cfg = resolve(SFTStageConfig, recipe, set_, stage=stage)
        from r1cli.stages import sft

        sft.run(cfg, stage=stage, model=model, data=data, out=out, eval_data=eval_data, force=force, resume=resume)

    return command


app.command("coldstart", help="Stage 1: SFT the base on long-CoT cold-start data (every reply must be "
            "<think>\\n...\\n</think>\\n + summary).")(_sft_command("coldstart"))
app.command("sft", help="Stage 3 / distillation: SFT the base (or a student) on rejection-sampled + general data "
            "(R1-format replies, or plain replies for trivial prompts).")(_sft_command("sft"))


# --- R1-Zero and stage 2: GRPO ------------------------------------------------------------------


@app.command("grpo")
def grpo(
    model: Path = typer.Option(..., "--model", help="Base (R1-Zero) or cold-start checkpoint (stage 2)."),
    data: Path = typer.Option(..., "--data", help="RL prompts with reference answers (dir, JSONL or Parquet)."),
    out: Path = typer.Option(..., "--out", help="Output checkpoint dir."),
    template: Optional[str] = typer.Option(None, "--template", help="r1 (chat template, stage 2) or r1zero (paper's Table 1 prompt)."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Prompts to evaluate the model on before and after (prints both)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = SetOpt,
    force: bool = ForceOpt,
    resume: bool = ResumeOpt,
):
    """R1-Zero / stage 2: GRPO with rule rewards (accuracy, format, language, ...) on TRL's GRPOTrainer."""
    from r1cli.config import GRPOStageConfig
    from r1cli.recipe import resolve

    cfg = resolve(GRPOStageConfig, recipe, set_, {"template": template}, stage="grpo")
    from r1cli.stages import grpo as stage

    stage.run(cfg, model=model, data=data, out=out, eval_data=eval_data, force=force, resume=resume)


# --- entry point -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    _register_unbuilt()
    try:
        app(args=argv, standalone_mode=False)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "r1"
        print(f"error: {e.format_message()} (see {cmd} --help)", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted: run the same command with --resume to continue from OUT.partial/", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # `r1 ... | head`
        sys.stderr.close()
        sys.exit(0)
