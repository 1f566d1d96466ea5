"""The typer options every stage command shares (r1cli/cli.py and r1cli/cli_data.py use them)."""

from __future__ import annotations

import typer

RecipeOpt = typer.Option(None, "--recipe", help="Recipe YAML (recipes/toy/*.yaml, recipes/<model>/*.yaml).")
SetOpt = typer.Option(None, "--set", help="Override a recipe key: --set trl.learning_rate=1e-5 (repeatable).")
ForceOpt = typer.Option(False, "--force", help="Replace OUT if it exists.")
ResumeOpt = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.partial/.")
