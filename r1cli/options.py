"""The typer options every stage command shares (r1cli/cli.py and r1cli/cli_data.py use them), and the
parsing of flags that are more than one value."""

from __future__ import annotations

import typer

from r1cli.errors import UserError

RecipeOpt = typer.Option(None, "--recipe", help="Recipe YAML (recipes/toy/*.yaml, recipes/<model>/*.yaml).")


def set_option(example: str):
    """--set with an example the stage accepts (only the trainer stages have a trl: section)."""
    return typer.Option(None, "--set", help=f"Override a recipe key: --set {example} (repeatable).")


SetOpt = set_option("trl.learning_rate=1e-5")
ForceOpt = typer.Option(False, "--force", help="Replace OUT if it exists.")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.partial/.")


# --- r1 score's --rewards / --weights -------------------------------------------------------------


def parse_rewards(rewards: str | None, weights: str | None) -> dict[str, float] | None:
    """"accuracy,format" + "1,0.5" -> {"accuracy": 1.0, "format": 0.5}; None when --rewards is not given."""
    if rewards is None:
        if weights is not None:
            raise UserError("--weights needs --rewards: give the reward names they weigh, in the same order")
        return None
    names = [n.strip() for n in rewards.split(",") if n.strip()]
    if not names:
        raise UserError("--rewards is empty: name at least one reward, e.g. --rewards accuracy,format")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"--rewards names {dupes[0]!r} twice: list each reward once")
    if weights is None:
        return {n: 1.0 for n in names}
    parts = [w.strip() for w in weights.split(",")]
    if len(parts) != len(names):
        raise UserError(f"--weights has {len(parts)} values for {len(names)} rewards: give one weight per reward, in order")
    values = []
    for name, w in zip(names, parts):
        try:
            values.append(float(w))
        except ValueError:
            raise UserError(f"--weights: {w!r} (for {name}) is not a number") from None
    return dict(zip(names, values))
