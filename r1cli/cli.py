"""The `r1` command: one thin typer command per stage, nothing else.

Each command resolves its recipe (r1cli.recipe: every setting is checked there) and calls one
stage function; the stage module, and with it torch, transformers and trl, is imported only then
(`stages.load`), so `r1 --help` and a mistaken setting are fast.
A user's mistake (UserError, or a usage error) prints one line and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

# typer >= 0.20 vendors click as typer._click: its exceptions are the ones raised here
from typer import _click as click

from r1cli import __version__, stages, warm
from r1cli.cli_data import data_app, toy_app
from r1cli.config import AlignConfig, EvalConfig, GRPOStageConfig, RejectSampleConfig, RMConfig, ScoreConfig, SFTStageConfig
from r1cli.errors import DiskFull, UserError
from r1cli.locking import unlock_output
from r1cli.options import ForceOpt, RecipeOpt, ResumeOpt, SetOpt, parse_rewards, set_option
from r1cli.recipe import resolve_stage, show_changed_settings

app = typer.Typer(
    name="r1",
    help="The DeepSeek-R1 training recipe as command-line stages. Each stage reads dataset and "
    "checkpoint dirs and writes one new dir (see README).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(toy_app, name="toy")


def _version(value: bool):
    if value:
        typer.echo(f"r1cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")):
    pass


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

        res = resolve_stage(SFTStageConfig, recipe, set_, stage=stage, out=out, trainer=True)
        show_changed_settings(res, stage)

        stages.load("sft").run(res, stage=stage, model=model, data=data, out=out, eval_data=eval_data, force=force, resume=resume)

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

    res = resolve_stage(GRPOStageConfig, recipe, set_, {"template": template}, stage="grpo", out=out, trainer=True)
    show_changed_settings(res, 'grpo')

    stages.load("grpo").run(res, model=model, data=data, out=out, eval_data=eval_data, force=force, resume=resume)


# --- stage 3a/3b: rejection sampling ----------------------------------------------------------------


@app.command("reject-sample")
def reject_sample(
    model: Path = typer.Option(..., "--model", help="Checkpoint to sample from (stage-2 RL model; a base or R1-Zero with --few-shot)."),
    data: Path = typer.Option(..., "--data", help="Prompts with reference answers; with --mode general, (prompt, reference reply) pairs."),
    out: Path = typer.Option(..., "--out", help="Output SFT dataset dir (r1 sft takes it)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="reasoning (verify answers) or general (write a CoT for known replies; "
                                      "general_check: summary or filters decides which are kept)."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples per prompt (default 8)."),
    keep: Optional[str] = typer.Option(None, "--keep", help="all-correct, best (shortest correct) or first."),
    judge: Optional[Path] = typer.Option(None, "--judge", help="Local judge model dir (generative judge for non-rule domains)."),
    judge_url: Optional[str] = typer.Option(None, "--judge-url", help="OpenAI-compatible endpoint for the judge, e.g. http://host:8000/v1."),
    few_shot: Optional[Path] = typer.Option(None, "--few-shot", help="SFT file of long-CoT examples put before each prompt (cold-start collection)."),
    num_shards: Optional[int] = typer.Option(None, "--num-shards", help="Split the prompts into N shards (chunk c goes to shard c % N)."),
    shard_index: Optional[int] = typer.Option(None, "--shard-index", help="Which shard this job writes (0..N-1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling seed (same seed, same rows)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="transformers (CPU or GPU) or vllm (GPU; on a CPU with vLLM's CPU build)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = set_option("sampling.max_new_tokens=1024"),
    force: bool = ForceOpt,
    resume: bool = ResumeOpt,
):
    """Stage 3: sample n per prompt, keep the verified and readable samples, write an SFT dataset."""

    flags = {"mode": mode, "n": n, "keep": keep, "judge.model_dir": str(judge) if judge else None,
             "judge.url": judge_url, "num_shards": num_shards, "shard_index": shard_index, "seed": seed,
             "backend": backend}
    res = resolve_stage(RejectSampleConfig, recipe, set_, flags, stage="reject-sample",
                        flag_names={"judge.model_dir": "--judge", "judge.url": "--judge-url"})
    show_changed_settings(res, 'reject-sample')

    stages.load("reject_sample").run(res.config, model=model, data=data, out=out, few_shot=few_shot, force=force, resume=resume)


# --- evaluation -----------------------------------------------------------------------------------


@app.command("eval")
def eval_(
    model: Path = typer.Option(..., "--model", help="Checkpoint to evaluate: any HF causal-LM dir."),
    data: Path = typer.Option(..., "--data", help="Eval prompts with reference answers (dir, JSONL or Parquet)."),
    out: Path = typer.Option(..., "--out", help="Output eval dir (per-sample rows + metrics in r1.json)."),
    k: Optional[int] = typer.Option(None, "--k", help="Samples per prompt ; pass@1 is their mean (default 4)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature, 0 = greedy (default 0.6)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling (default 0.95)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Completion length cap (default 256)."),
    template: Optional[str] = typer.Option(None, "--template", help="r1 (chat template) or r1zero (paper's Table 1 prompt)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N prompts."),
    backend: Optional[str] = typer.Option(None, "--backend", help="transformers (CPU or GPU) or vllm (GPU; on a CPU with vLLM's CPU build)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling seed (same seed, same samples)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = set_option("system_prompt='Reason step by step.'"),
    force: bool = ForceOpt,
):
    """pass@1 over k samples, pass@j and maj@j for j <= k, cons@k, format and language-consistency rates of a checkpoint."""

    flags = {"k": k, "sampling.temperature": temperature, "sampling.top_p": top_p,
             "sampling.max_new_tokens": max_new_tokens, "template": template, "limit": limit, "backend": backend,
             "seed": seed}
    res = resolve_stage(EvalConfig, recipe, set_, flags, stage="eval")
    show_changed_settings(res, 'eval')

    stages.load("evaluate").run(res.config, model=model, data=data, out=out, force=force)


# --- scoring completions with named rewards -------------------------------------------------------


@app.command("score")
def score(
    data: Path = typer.Argument(..., help="Completions to score: JSONL, Parquet or dataset dir with prompt + completion."),
    out: Path = typer.Option(..., "--out", help="Output dataset dir (input columns + reward_<name> + reward)."),
    rewards: Optional[str] = typer.Option(None, "--rewards", help="Comma-separated reward names or pkg.mod:fn "
                                          "(default accuracy,format): accuracy, format, language, reasoning_steps, "
                                          "length, cosine, repetition, overlong, code, helpfulness, harmlessness."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Comma-separated weights, one per reward (default 1 each)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="math-verify worker processes (default: one per core, up to 4)."),
    template: Optional[str] = typer.Option(None, "--template", help="r1 (<think> + summary) or r1zero (<answer> tags): "
                                           "what the format reward checks."),
    helpful_rm: Optional[str] = typer.Option(None, "--helpful-rm", help="Helpfulness reward model: a dir, or "
                                             "http://HOST:PORT/v1 of a served one (for helpfulness)."),
    harmless_rm: Optional[str] = typer.Option(None, "--harmless-rm", help="Harmlessness reward model: a dir, or "
                                              "http://HOST:PORT/v1 of a served one (for harmlessness)."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = set_option("reward_options.timeout=5"),
    force: bool = ForceOpt,
):
    """Score a dataset of completions with named rewards (reward_<name> columns + the weighted sum)."""

    flags = {"rewards": parse_rewards(rewards, weights), "workers": workers, "template": template,
             "helpful_rm": helpful_rm, "harmless_rm": harmless_rm}
    res = resolve_stage(ScoreConfig, recipe, set_, flags, stage="score")
    show_changed_settings(res, 'score')
    stages.load("score").run(res.config, data=data, out=out, force=force)


# --- stage 4: reward models and all-scenario RL ---------------------------------------------------


@app.command("rm")
def rm(
    model: Path = typer.Option(..., "--model", help="Causal-LM checkpoint to start from (base or later); gets a score head."),
    data: Path = typer.Option(..., "--data", help="Preference pairs (prompt/chosen/rejected), or with --pointwise "
                              "safety labels (prompt/completion/label, 1 = safe)."),
    out: Path = typer.Option(..., "--out", help="Output reward-model dir (sequence-classification checkpoint)."),
    pointwise: bool = typer.Option(False, "--pointwise", help="Train on safe/unsafe labels (BCE) instead of pairs."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Held-out rows of the same kind (e.g. pairs on other "
                                             "prompts): the accuracy is measured on them, and every --data row trains."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = SetOpt,
    force: bool = ForceOpt,
    resume: bool = ResumeOpt,
):
    """Train a helpfulness (pairwise, Bradley-Terry) or harmlessness (pointwise) reward model for r1 align."""

    res = resolve_stage(RMConfig, recipe, set_, {"pointwise": True if pointwise else None}, stage="rm", out=out, trainer=True)
    show_changed_settings(res, 'rm')

    stages.load("rm").run(res, model=model, data=data, out=out, eval_data=eval_data, force=force, resume=resume)


@app.command("align")
def align(
    model: Path = typer.Option(..., "--model", help="Stage-3 (SFT) checkpoint."),
    data: List[Path] = typer.Option(..., "--data", help="Prompts: reasoning (domain math/code/...) and general "
                                    "(domain general); repeatable."),
    out: Path = typer.Option(..., "--out", help="Output checkpoint dir."),
    helpful_rm: Optional[str] = typer.Option(None, "--helpful-rm", help="Helpfulness reward model (scores the summary): "
                                             "a dir, or http://HOST:PORT/v1 of a served one."),
    harmless_rm: Optional[str] = typer.Option(None, "--harmless-rm", help="Harmlessness reward model (scores the whole "
                                              "output): a dir, or http://HOST:PORT/v1 of a served one."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Reasoning prompts to evaluate before and after."),
    general_eval_data: Optional[Path] = typer.Option(None, "--general-eval-data", help="General prompts whose RM scores "
                                                     "(helpfulness, safe rate) are measured before and after."),
    recipe: Optional[Path] = RecipeOpt,
    set_: Optional[List[str]] = SetOpt,
    force: bool = ForceOpt,
    resume: bool = ResumeOpt,
):
    """Stage 4: GRPO over reasoning + general prompts; rule rewards on reasoning rows, reward models on general rows."""

    flags = {"helpful_rm": helpful_rm or None, "harmless_rm": harmless_rm or None}
    res = resolve_stage(AlignConfig, recipe, set_, flags, stage="align", out=out, trainer=True)
    show_changed_settings(res, 'align')

    stages.load("align").run(res, model=model, data=data, out=out, eval_data=eval_data, general_eval_data=general_eval_data,
              force=force, resume=resume)


# --- report ---------------------------------------------------------------------------------------


@app.command("report")
def report(
    runs: List[Path] = typer.Argument(..., metavar="RUN_DIR", help="Run dirs holding stage outputs and eval/<name> "
                                      "dirs (e.g. runs/demo); several (seeds) add a mean ± spread (min–max) table."),
    out: Path = typer.Option(..., "--out", help="Output report dir: report.md, report.json, PNG training curves."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when a stage is unfinished or an input a manifest "
                               "records inside a run is missing or changed since."),
    claims: Optional[Path] = typer.Option(None, "--claims", help="A YAML file of claims about the runs (e.g. "
                                          "recipes/toy/claims.yaml: R1-Zero > base, stage 2 >= cold start + 10, ...): "
                                          "each is shown with its status (holds beyond its 95% CI, unclear, fails, not "
                                          "measured)."),
    fail_on_claims: bool = typer.Option(False, "--fail-on-claims", help="Exit 1 when a claim of --claims does not "
                                        "hold on a run."),
    force: bool = ForceOpt,
):
    """One page with every stage's numbers and curves, read from the runs' manifests, metrics.jsonl and eval dirs."""

    failed = stages.load("report").run(runs, out=out, check=check, claims=claims, fail_on_claims=fail_on_claims,
                                       force=force)
    if failed:
        raise typer.Exit(1)


# --- entry point -------------------------------------------------------------------------


def _rerun(argv: list[str] | None) -> str:
    """How to continue after an interrupted run: --resume where the command has it."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in args if not a.startswith("-")), None)
    command = typer.main.get_command(app).commands.get(name) if name else None
    if command is not None and any(p.name == "resume" for p in command.params):
        return "run the same command with --resume to continue from OUT.partial/"
    return "run the same command again (with --force if it left an OUT.partial/ behind)"


def main(argv: list[str] | None = None) -> None:
    # under `python -m r1cli.warm -- ...` (make demo's lanes): run in a fork of a process that has imported torch
    code = warm.run_warm(f"{__name__}:main", list(sys.argv[1:] if argv is None else argv))
    if code is not None:
        sys.exit(code)
    try:
        # typer turns Ctrl-C into Exit(130) and, with standalone_mode=False, returns that code
        # instead of raising: a KeyboardInterrupt never reaches the except below on its own
        code = app(args=argv, standalone_mode=False)
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except DiskFull as e:
        print(f"error: {e}: free space and {_rerun(argv)}", file=sys.stderr)
        sys.exit(2)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "r1"
        print(f"error: {e.format_message()} (see {cmd} --help)", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print(f"interrupted: {_rerun(argv)}", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # `r1 ... | head`
        sys.stderr.close()
        sys.exit(0)
    finally:  # a command run in-process (tests, benches) leaves no lock on its OUT behind
        unlock_output()
