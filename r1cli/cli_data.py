"""`r1 data ...` (inspect, export, import, merge, filter) and `r1 toy ...` (data, base): the dataset and
toy-world command groups of the `r1` CLI (r1cli/cli.py registers them)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from r1cli import stages
from r1cli.toy.config import ToyBaseConfig, ToyDataConfig
from r1cli.options import ForceOpt, RecipeOpt, set_option
from r1cli.recipe import resolve_stage, show_changed_settings

data_app = typer.Typer(help="Inspect, export, import, merge and filter datasets.", no_args_is_help=True)
toy_app = typer.Typer(help="Build the toy world: synthetic tasks and a tiny base model.", no_args_is_help=True)


# --- datasets: r1 data inspect | export | import | merge --------------------------------------

DatasetArg = typer.Argument(..., help="A dataset: r1 or HF dataset dir, .jsonl/.json, .parquet or .arrow file, "
                            "or a dir of such files (a dataset downloaded from the Hub: see --split).")
SplitOpt = typer.Option(None, "--split", help="The split to read from a dir that holds several (Hub files such as "
                        "train-00000-of-00001.parquet and test.jsonl, also under data/; a saved DatasetDict).")


@data_app.command("inspect")
def data_inspect(
    path: Path = DatasetArg,
    rows: int = typer.Option(3, "--rows", help="How many rows to show."),
    split: Optional[str] = SplitOpt,
):
    """Row count, counts by domain and language, columns and their types, and a few rows."""

    stages.load("data").inspect(path, rows=rows, split=split)


@data_app.command("export")
def data_export(
    path: Path = DatasetArg,
    to: Path = typer.Option(..., "--to", help="Output file: .jsonl or .parquet."),
    split: Optional[str] = SplitOpt,
    force: bool = typer.Option(False, "--force", help="Replace --to if it exists."),
):
    """Write a dataset as one JSONL or Parquet file (by the extension of --to)."""

    stages.load("data").export(path, to, force=force, split=split)


@data_app.command("import")
def data_import(
    src: Path = typer.Argument(..., help="Source data: any file or dir r1 data inspect reads."),
    to: Path = typer.Option(..., "--to", help="Output dataset dir (r1 dataset dir, canonical columns); a name ending "
                            "in .jsonl or .parquet writes one file instead."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (canonical columns already), gsm8k "
                            "(question, answer '... #### N'), math (problem, solution with \\boxed{}) or messages "
                            "(a conversation per row: messages, or ShareGPT conversations)."),
    kind: Optional[str] = typer.Option(None, "--kind", help="With --format jsonl: prompts, completions, sft, "
                                       "preferences or safety (default: guessed from the columns). With --format "
                                       "messages: prompts (the last user turn and the turns before it) or sft."),
    maps: Optional[List[str]] = typer.Option(None, "--map", help="CANONICAL=SOURCE: read column SOURCE as "
                                             "CANONICAL, e.g. --map prompt=Question --map answer=Answer (repeatable)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop rows whose final answer cannot be extracted "
                                  "(counted) instead of stopping at the first."),
    split: Optional[str] = SplitOpt,
    force: bool = typer.Option(False, "--force", help="Replace --to if it exists."),
):
    """Map a public dataset format onto the canonical columns, check it, and save it as an r1 dataset dir."""

    stages.load("data").import_(src, to, fmt=fmt, kind=kind, skip_bad=skip_bad, force=force, split=split, maps=maps)


@data_app.command("merge")
def data_merge(
    paths: List[Path] = typer.Argument(..., help="Datasets to concatenate, in this order."),
    to: Path = typer.Option(..., "--to", help="Output dataset dir."),
    force: bool = typer.Option(False, "--force", help="Replace --to if it exists."),
):
    """Concatenate datasets in order; a row whose id an earlier row has is dropped (joins r1 reject-sample shards)."""

    stages.load("data").merge(paths, to, force=force)


@data_app.command("filter")
def data_filter(
    path: Optional[Path] = typer.Argument(None, help="The prompts to filter (default, with an eval dir: the prompts "
                                          "it measured). With a reject-sample dir: the --data it sampled."),
    source: Optional[Path] = typer.Option(None, "--from", help="Where the pass rates come from: an r1 eval dir (mean "
                                          "reward_accuracy of each prompt's k samples) or an r1 reject-sample dir "
                                          "(samples that passed every check / n)."),
    pass_rate: Optional[str] = typer.Option(None, "--pass-rate", help="MIN..MAX, e.g. 0.1..0.9: keep the prompts whose "
                                            "pass rate lies in [MIN, MAX] (0 and 1 teach GRPO nothing)."),
    max_prompt_tokens: Optional[int] = typer.Option(None, "--max-prompt-tokens", help="Keep the prompts of at most N "
                                                    "tokens as --model sees them: N = its context - the completion "
                                                    "budget (max_new_tokens / max_completion_length)."),
    model: Optional[Path] = typer.Option(None, "--model", help="With --max-prompt-tokens: the model dir whose "
                                         "tokenizer and chat template measure the prompts."),
    template: str = typer.Option("r1", "--template", help="With --max-prompt-tokens: r1 (chat template) or r1zero "
                                 "(the paper's Table 1 prompt), as the stage will use."),
    to: Path = typer.Option(..., "--to", help="Output dataset dir (the kept rows; with --pass-rate, a pass_rate column)."),
    force: bool = typer.Option(False, "--force", help="Replace --to if it exists."),
):
    """Keep the prompts whose measured pass rate lies in a range (DAPO's dynamic sampling, offline), or whose
    length leaves the completion room in a model's context."""

    stages.load("data").filter_(path, to, source=source, pass_rate=pass_rate, max_prompt_tokens=max_prompt_tokens,
                                model=model, template=template, force=force)


# --- toy world ---------------------------------------------------------------------------


@toy_app.command("data")
def toy_data(
    out: Path = typer.Argument(..., help="Output dir; gets rl/, coldstart/, eval/, general/, helpful_pairs/, safety/."),
    seed: Optional[int] = typer.Option(None, help="Seed (same seed, same data)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = set_option("n_rl=1000"),
    force: bool = ForceOpt,
):
    """Write the synthetic toy task world (English and Chinese arithmetic word problems)."""

    res = resolve_stage(ToyDataConfig, recipe, set_, {"seed": seed}, stage="toy-data")
    show_changed_settings(res, 'toy data')

    stages.load("toy").make_toy_data(res.config, out, force=force)


@toy_app.command("base")
def toy_base(
    out: Path = typer.Argument(..., help="Output checkpoint dir (an ordinary HF model dir)."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    steps: Optional[int] = typer.Option(None, help="Pretraining steps."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = set_option("hidden_size=256"),
    force: bool = ForceOpt,
):
    """Train a tokenizer and a tiny Llama base model from scratch on a toy corpus, then probe what it copies;
    a base under min_copy on any kind is trained again from another start (--set attempts=N --set min_copy=X)."""

    res = resolve_stage(ToyBaseConfig, recipe, set_, {"seed": seed, "steps": steps}, stage="toy-base")
    show_changed_settings(res, 'toy base')

    stages.load("toy").make_toy_base(res.config, out, force=force)
