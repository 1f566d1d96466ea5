"""`r1 align`: stage-4 all-scenario RL, reasoning and general prompts with rewards routed by domain.

    r1 align --model runs/demo/sft --data runs/demo/data/rl --data runs/demo/data/general \\
        --helpful-rm runs/demo/rm_helpful --harmless-rm runs/demo/rm_safety --out runs/demo/align \\
        --recipe recipes/toy/align.yaml --eval-data runs/demo/data/eval \\
        --general-eval-data runs/demo/data/general_eval

The same wiring as `r1 grpo` (r1cli/training/grpo.py, TRL's GRPOTrainer) over a mixed prompt set.
Routing needs no special trainer: a reward returns None where it does not apply, and TRL's
aggregation ignores None (NaN). The RM rewards `helpfulness`/`harmlessness` return None on
reasoning rows themselves (r1cli/rewards/preference.py); every reward not in `general_rewards`
(default: the RMs and the language reward, as in the paper) is masked to None on general rows
here, whatever it does on its own (the format reward scores any text). Our part here:
- the checks (every row has a domain; RMs given iff there are general rows; RM dirs are
  one-label sequence-classification checkpoints; a served RM, `--helpful-rm http://host:8000/v1`,
  answers, serves rm_http.served_model and scores a probe), before anything loads;
- the prompt order: TRL shuffles prompts at random, so `mix` is built here as an explicit order
  of generation batches (mixed: each batch holds its share of general prompts; alternate:
  reasoning-only and general-only batches) and TRL's shuffle is turned off; when only the RMs
  score general rows, general prompts join at the RMs' start step (before it they would cost
  generations and teach nothing);
- the paper's schedule (preference rewards only from `preference_rewards_from`), the stage-4
  defaults (temperature 0.7; normalize_then_sum, as RM scales differ from the 0/1 rule rewards:
  AlignConfig.TRL_DEFAULTS);
- telemetry per domain (and a served RM's requests, retries, failures and latency: rm_http/<reward>/*
  in metrics.jsonl, counts.rm_http in the manifest), and before/after numbers: reasoning accuracy on --eval-data, the
  helpfulness RM score and the harmlessness RM's safe rate on --general-eval-data.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from itertools import pairwise
from pathlib import Path

from r1cli.artifacts import check_input, check_model_dir, check_output
from r1cli.config import AlignConfig
from r1cli.data import load_prompts
from r1cli.errors import UserError
from r1cli.evaluation import before_after, evaluate
from r1cli.generation import load_generator
from r1cli.recipe import Resolved
from r1cli.rejection.filters import same_reply
from r1cli.rewards import get_reward, resolve_rewards
from r1cli.rewards.preference import check_rm, start_step
from r1cli.templates import split_completion
from r1cli.training import lora, rundir
from r1cli.training.args import manifest_config, model_dtype
from r1cli.training.grpo import (
    SampleLog,
    check_reward_columns,
    check_tools,
    degenerate_warnings,
    fit_context,
    grpo_metrics_row,
    grpo_trainer_class,
    load_tokenizer,
    prepare_prompts,
)
from r1cli.training.telemetry import Telemetry

PREFERENCE = {"helpfulness": "helpful_rm", "harmlessness": "harmless_rm"}
GENERAL = "general"


# --- checks ---------------------------------------------------------------------------------------


def check_domains(sets: list, paths: list) -> tuple[int, int]:
    """(reasoning rows, general rows); every row must say which it is."""
    n_general = n_reasoning = 0
    for ds, path in zip(sets, paths):
        domains = ds["domain"] if "domain" in ds.column_names else [None] * len(ds)
        missing = sum(1 for d in domains if not d)
        if missing:
            raise UserError(f"{missing} rows of {path} have no `domain`: r1 align routes rewards by it, so set it "
                            "(general for chat prompts; math, code, stem or logic for reasoning prompts)")
        g = sum(1 for d in domains if d == GENERAL)
        n_general, n_reasoning = n_general + g, n_reasoning + len(domains) - g
    return n_reasoning, n_general


def check_routing(cfg: AlignConfig, n_reasoning: int, n_general: int) -> None:
    """Reward models iff general rows, and prompts of each kind the general_fraction asks for (the
    settings themselves were checked when the recipe was resolved: AlignConfig.check)."""
    used = [name for name in cfg.rewards if name in PREFERENCE]
    given = [key for key in PREFERENCE.values() if getattr(cfg, key)]
    if n_general and not (used and given):
        raise UserError(f"the --data sets have {n_general} general rows but no reward model scores them: give "
                        "--helpful-rm/--harmless-rm (and keep helpfulness/harmlessness in rewards), or drop those rows")
    if not n_general and (used or given):
        raise UserError("reward models are given but no --data row has domain general, so they would never score "
                        "anything: add the general prompts as another --data, or drop the RMs and use `r1 grpo`")
    for name in used:
        if not getattr(cfg, PREFERENCE[name]):
            flag = "--" + PREFERENCE[name].replace("_", "-")
            raise UserError(f"reward {name!r} needs {flag} DIR (a reward model from `r1 rm`)")
    if cfg.general_fraction is not None and (cfg.general_fraction > 0 and not n_general
                                             or cfg.general_fraction < 1 and not n_reasoning):
        raise UserError(f"general_fraction {cfg.general_fraction} asks for prompts of a kind the --data sets lack")


# --- routing ------------------------------------------------------------------------------------


def route(rewards: list, general_rewards: list[str]) -> list:
    """Rewards not in general_rewards return None on general rows, whatever they do on their own
    (the format reward, say, scores any text): the routing lives here, in one place."""
    out = []
    for name, fn, weight in rewards:
        out.append((name, fn if name in general_rewards else _reasoning_only(name, fn), weight))
    return out


def _reasoning_only(name: str, fn):
    def reward(prompts, completions, completion_ids=None, **kw):
        values = fn(prompts, completions, completion_ids=completion_ids, **kw)
        domains = kw.get("domain")
        return values if domains is None else [None if d == GENERAL else v for v, d in zip(values, domains)]

    reward.__name__ = name
    reward.required_columns = getattr(fn, "required_columns", ())
    return reward


# --- data ----------------------------------------------------------------------------------------


def combine(sets: list):
    """One dataset from the --data sets; a column one set lacks is None there."""
    from datasets import Features, concatenate_datasets

    features = {}
    for ds in sets:
        for name, feat in ds.features.items():
            features.setdefault(name, feat)
    out = []
    for ds in sets:
        for name in features:
            if name not in ds.column_names:
                ds = ds.add_column(name, [None] * len(ds), feature=features[name])
        try:
            out.append(ds.select_columns(list(features)).cast(Features(features)))
        except (ValueError, TypeError) as e:
            raise UserError(f"the --data sets disagree on a column's type ({str(e).splitlines()[0]}): make them match") from None
    return concatenate_datasets(out)


def mix_order(domains: list[str], per_batch: int, n_batches: int, mix: str, general_fraction: float, seed: int,
              general_from: int = 0) -> list[int]:
    """Row indices for n_batches generation batches of per_batch prompts each.

    mixed: a batch holds round(general_fraction * per_batch) general prompts (rounding carried
    over, so the share is exact over the run); alternate: a whole batch is general or reasoning,
    general batches spread evenly at that share (0.5 = strictly alternating). Batches before
    `general_from` are reasoning only. Each pool is drawn without replacement, reshuffled when
    used up.
    """
    rng = random.Random(seed)
    pools = {True: [i for i, d in enumerate(domains) if d == GENERAL],
             False: [i for i, d in enumerate(domains) if d != GENERAL]}
    left = {True: [], False: []}

    def draw(general: bool, k: int) -> list[int]:
        got = []
        while len(got) < k:
            if not left[general]:
                left[general] = rng.sample(pools[general], len(pools[general]))
            got.append(left[general].pop())
        return got

    order = []
    f = general_fraction
    for b in range(n_batches):
        if b < general_from:
            order += draw(False, per_batch)
            continue
        b -= general_from
        if mix == "alternate":
            general = math.ceil((b + 1) * f - 1e-9) > math.ceil(b * f - 1e-9)  # a general batch opens each period
            batch = draw(general, per_batch)
        else:
            g = round(f * (b + 1) * per_batch) - round(f * b * per_batch)
            batch = draw(True, g) + draw(False, per_batch - g)
            rng.shuffle(batch)
        order += batch
    return order


def generation_batches(args, n_rows: int) -> tuple[int, int, float]:
    """(prompts per generation batch, batches the run needs, batches per optimizer step): TRL
    generates for generation_batch_size / num_generations prompts at a time and reuses a
    generation for num_iterations updates; without max_steps, one pass over the rows (epochs
    repeat it)."""
    per_batch = args.generation_batch_size // args.num_generations
    per_step = args.gradient_accumulation_steps / (args.steps_per_generation * args.num_iterations)
    if args.max_steps and args.max_steps > 0:
        return per_batch, math.ceil(args.max_steps * per_step) + 1, per_step
    return per_batch, max(1, n_rows // per_batch), per_step


# --- telemetry and before/after -------------------------------------------------------------------------


def run_summary(metrics_file: Path) -> dict:
    """First, last and mean of every per-domain reward and RM score over the run's log lines."""
    if not metrics_file.is_file():
        return {}
    series: dict[str, list] = {}
    for line in metrics_file.read_text().splitlines():
        rec = json.loads(line)
        for k, v in rec.items():
            if (k.startswith("rm/") or k.count("/") == 3 and k.startswith("rewards/")) and isinstance(v, (int, float)) \
                    and math.isfinite(v):
                series.setdefault(k, []).append(v)
    return {k: {"first": round(v[0], 5), "last": round(v[-1], 5), "mean": round(statistics.fmean(v), 5)}
            for k, v in sorted(series.items())}


def preference_eval(model_path: Path, ds, cfg: AlignConfig, scorers: dict) -> dict:
    """Sample general prompts with the shared evaluation path and score the samples with the raw
    RM scores: helpfulness mean score, harmlessness safe rate (score > 0, i.e. P(safe) > 0.5). Rows with a
    reference `answer` also get the right-reply rate: the reply after the CoT says what the reference says
    (reject-sample's `rule` verifier), which an RM score cannot tell."""

    rows, _ = evaluate(load_generator(model_path, cfg.eval.backend, running=True), ds, k=cfg.eval.k, sampling=cfg.eval.sampling, template=cfg.template,
                       seed=cfg.eval.seed, language_threshold=cfg.eval.language_threshold)
    prompts, completions = [r["prompt"] for r in rows], [r["completion"] for r in rows]
    out = {"n_prompts": len(ds), "n_samples": len(rows)}
    # per prompt (rows come prompt by prompt): what `r1 report` bootstraps the before/after difference over
    starts = [i for i, r in enumerate(rows) if r["sample_index"] == 0] + [len(rows)]
    per_prompt = {"id": [str(rows[i].get("id")) for i in starts[:-1]], "n": [b - a for a, b in pairwise(starts)]}
    if any(r.get("answer") for r in rows):
        right = [bool(r.get("answer")) and same_reply(split_completion(c, prefilled_think=True)[1], r["answer"])
                 for r, c in zip(rows, completions)]
        out["right_reply"] = round(sum(right) / len(right), 5)
        per_prompt["right_count"] = [sum(right[a:b]) for a, b in pairwise(starts)]
        kinds = sorted({str(r["kind"]) for r in rows if r.get("kind")})
        out["right_reply_by_kind"] = {k: round(statistics.fmean(x for x, r in zip(right, rows) if r.get("kind") == k), 5)
                                      for k in kinds}
    for name, fn in scorers.items():
        raw = fn(prompts, completions)
        if None in raw:  # a served RM that gave up on some samples: a mean over the rest would mislead
            raise UserError(f"the {name} reward model gave no score for {raw.count(None)} of {len(raw)} general-eval "
                            "samples after every retry: check its server, then run again with --resume (the "
                            "trained weights are kept)")
        key = "safe_count" if name == "harmlessness" else f"{name}_score_sum"
        per_prompt[key] = [round(sum(x > 0 for x in raw[a:b]) if name == "harmlessness" else sum(raw[a:b]), 5)
                           for a, b in pairwise(starts)]
        out[f"{name}_score_mean"] = round(statistics.fmean(raw), 5)
        out[f"{name}_positive_rate"] = round(sum(x > 0 for x in raw) / len(raw), 5)
        if name == "harmlessness":
            out["safe_rate"] = out[f"{name}_positive_rate"]
            kinds = sorted({str(r["kind"]) for r in rows if r.get("kind")})
            out["safe_rate_by_kind"] = {k: round(statistics.fmean(x > 0 for x, r in zip(raw, rows) if r.get("kind") == k), 5)
                                        for k in kinds}
    out["per_prompt"] = per_prompt
    return out


def print_preference(before: dict, after: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="general prompts: reward-model scores before vs after")
    for col in ("metric", "before", "after", "change"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for k in before:
        if isinstance(before[k], float):
            t.add_row(k, f"{before[k]:.3f}", f"{after[k]:.3f}", f"{after[k] - before[k]:+.3f}")
    Console().print(t)


# --- the stage ----------------------------------------------------------------------------------------


def run(res: Resolved, *, model: Path, data: list[Path], out: Path, eval_data: Path | None = None,
        general_eval_data: Path | None = None, force: bool = False, resume: bool = False) -> Path:
    cfg, args = res.config, res.trl  # the TRL config was built and checked with the recipe (r1cli/recipe.py)
    # --- check inputs: every check before a model loads
    model = check_model_dir(model)
    check_output(out, force, resume)
    if not data:
        raise UserError("r1 align needs --data: the reasoning prompts and the general prompts (repeat --data)")
    sets = [load_prompts(check_input(d, "--data")) for d in data]
    for extra, what in ((eval_data, "--eval-data"), (general_eval_data, "--general-eval-data")):
        if extra is not None:  # read now: a bad file found after training would cost the run
            load_prompts(extra, what)
    n_reasoning, n_general = check_domains(sets, data)
    check_routing(cfg, n_reasoning, n_general)
    # a dir is checked, a served RM (a URL) asked for its model list and a probe score: before any model loads
    rms = {key: check_rm(getattr(cfg, key), "--" + key.replace("_", "-"), cfg.rm_http)
           for key in PREFERENCE.values() if getattr(cfg, key)}
    rm_dirs = {key: p for key, p in rms.items() if isinstance(p, Path)}
    general_eval = load_prompts(general_eval_data) if general_eval_data is not None else None
    if general_eval is not None and not rms:
        raise UserError("--general-eval-data is scored with the reward models: give --helpful-rm/--harmless-rm too")
    tokenizer, prefilled = load_tokenizer(cfg, model)
    check_tools(cfg, args, tokenizer)
    options = dict(prefilled_think=prefilled, template=cfg.template, rm_normalization=cfg.rm_normalization,
                   preference_rewards_from=cfg.preference_rewards_from, rm_batch_size=cfg.rm_batch_size,
                   rm_http=cfg.rm_http, **{k: getattr(cfg, k) for k in rms}, **cfg.reward_options)
    rewards = route(resolve_rewards(cfg.rewards, **options), cfg.general_rewards)  # loads the RMs
    ds = combine([prepare_prompts(s, cfg.template, cfg.r1zero_template, cfg.system_prompt) for s in sets])
    check_reward_columns(rewards, ds, " and ".join(map(str, data)))
    ds, dropped = fit_context(cfg, args, ds, tokenizer, model, " and ".join(map(str, data)))
    if dropped:  # the prompts left, as the rules above need them
        n_reasoning, n_general = check_domains([ds], ["the prompts that fit the context"])
        check_routing(cfg, n_reasoning, n_general)
    fraction = cfg.general_fraction if cfg.general_fraction is not None else n_general / len(ds)
    inputs = [model, *data, *rm_dirs.values()] + [p for p in (eval_data, general_eval_data) if p is not None]
    per_batch, n_batches, per_step = generation_batches(args, len(ds))
    # when only the RMs score general rows, no reward applies to them before the RMs start: they
    # join the prompt stream then, instead of costing generations with no learning signal
    general_from = 0
    if not set(cfg.general_rewards) - set(PREFERENCE):
        general_from = math.ceil(start_step(cfg.preference_rewards_from, args.max_steps) * per_step)
    order = mix_order(ds["domain"], per_batch, n_batches, cfg.mix, fraction, cfg.seed, general_from)
    train_ds = ds.select(order)

    # --- train (a resumed run whose weights were already saved goes straight to what is left)
    with rundir.trainer_output(out, kind="checkpoint", stage="align", config=manifest_config(res),
                        inputs=inputs, force=force, resume=resume) as run_:
        if not rundir.already_trained(run_):
            # --- heavy libraries: imported here, after every check (seconds)
            import torch
            from transformers import AutoModelForCausalLM

            GRPOTrainer = grpo_trainer_class()  # TRL's, with the extensions cfg asks for (r1cli/training/grpo.py)
            samples = SampleLog(run_, cfg.samples_every, by_domain=True)
            torch.manual_seed(args.seed)
            policy = AutoModelForCausalLM.from_pretrained(model, dtype=model_dtype(args), **lora.load_kwargs(cfg.peft))
            telemetry = Telemetry(run_, "r1 align", warn=degenerate_warnings, show=(
                "reward", "rewards/accuracy/mean", "rewards/helpfulness/mean", "rewards/harmlessness/mean"))
            trainer = GRPOTrainer(model=policy, reward_funcs=samples.wrap_all(rewards), args=args, train_dataset=train_ds,
                                  processing_class=tokenizer, callbacks=[telemetry, samples.callback()],
                                  peft_config=lora.lora_config(cfg.peft), stage_config=cfg)
            rundir.set_callbacks(trainer)
            result = trainer.train(resume_from_checkpoint=rundir.resume_checkpoint(run_))
            samples.flush()
            rundir.save_checkpoint(trainer, tokenizer, run_)
            run_.counts.update(prompts=len(ds), dropped_long_prompts=dropped, reasoning_prompts=n_reasoning,
                               general_prompts=n_general,
                               steps=trainer.state.global_step,
                               preference_rewards_from_step=start_step(cfg.preference_rewards_from,
                                                                       trainer.state.max_steps),
                               completions=trainer.state.global_step * args.per_device_train_batch_size
                               * args.gradient_accumulation_steps * trainer.accelerator.num_processes)
            served = {name: fn.served.summary() for name, fn, _ in rewards if getattr(fn, "served", None)}
            if served:  # this process's requests to the served RMs (each training process has its own client)
                run_.counts["rm_http"] = served
            run_.metrics.update(train_runtime_s=round(result.metrics["train_runtime"], 2), prefilled_think=prefilled,
                                general_fraction=round(fraction, 5), final=grpo_metrics_row(telemetry.latest),
                                over_run=run_summary(run_.partial / "metrics.jsonl"))
            rundir.mark_trained(run_)

        # --- before / after: reasoning (--eval-data) and the reward models' scores (--general-eval-data)
        if rundir.is_main_process():
            if eval_data is not None:
                run_.metrics["eval"] = before_after(model, run_.partial, eval_data, cfg.eval, template=cfg.template,
                                                    r1zero_template=cfg.r1zero_template)
            if general_eval is not None:
                if cfg.eval.limit:
                    general_eval = general_eval.select(range(min(cfg.eval.limit, len(general_eval))))
                raw = {name: get_reward(name, **{**options, "rm_normalization": "none", "preference_rewards_from": 0})
                       for name in PREFERENCE if PREFERENCE[name] in rms}
                res_ = {"before": preference_eval(model, general_eval, cfg, raw),
                        "after": preference_eval(run_.partial, general_eval, cfg, raw)}
                print_preference(res_["before"], res_["after"])
                run_.metrics["general_eval"] = res_
    return out
