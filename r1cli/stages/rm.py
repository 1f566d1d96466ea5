"""`r1 rm`: train a reward model for stage 4 (a one-label sequence-classification checkpoint).

    r1 rm --model runs/demo/base --data runs/demo/data/helpful_pairs --out runs/demo/rm_helpful \\
        --recipe recipes/toy/rm.yaml                                   # pairwise (Bradley-Terry)
    r1 rm --pointwise --model runs/demo/base --data runs/demo/data/safety --out runs/demo/rm_safety \\
        --recipe recipes/toy/rm.yaml                                   # safe/unsafe labels

Pairwise: `prompt`, `chosen`, `rejected` -> TRL's RewardTrainer (loss -log sigmoid(r_chosen -
r_rejected)). Pointwise: `prompt`, `completion`, `label` (1 = safe) -> BCE on the one logit;
RewardTrainer only takes pairs, so this is transformers' Trainer with a small compute_loss.
Both start from the causal LM given (AutoModelForSequenceClassification, num_labels=1: the
backbone's weights and a new score head), tokenize with rewards.preference.encode, the same
code that builds the RM's input when `r1 align` / `r1 score` use it, and hold out
`eval_fraction` of the rows: the manifest gets the held-out pair accuracy / label accuracy and
the score mean/std (for `rm_normalization: fixed`).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from r1cli.artifacts import check_input, check_model_dir, check_output
from r1cli.data import load_preferences, load_safety, load_table
from r1cli.errors import UserError
from r1cli.recipe import Resolved
from r1cli.rewards.common import fix_pad_token
from r1cli.rewards.preference import encode, rm_scores
from r1cli.templates import completion_text
from r1cli.training import lora, rundir
from r1cli.training.args import manifest_config, model_dtype
from r1cli.training.telemetry import Telemetry

# --- data ------------------------------------------------------------------------------------------


def load_rows(path: Path, pointwise: bool, what: str = "--data"):
    """The pairs (or labels), after checking the file holds the kind --pointwise says."""

    cols = set(load_table(path).column_names)
    if pointwise and {"chosen", "rejected"} <= cols and "label" not in cols:
        raise UserError(f"{what} {path} holds preference pairs (chosen/rejected), not safety labels: drop --pointwise")
    if not pointwise and "label" in cols and "chosen" not in cols:
        raise UserError(f"{what} {path} holds labelled completions (label), not preference pairs: add --pointwise")
    return load_safety(path) if pointwise else load_preferences(path)


def tokenize(ds, tokenizer, pointwise: bool, keep: tuple[str, ...] = ()):
    """chosen_ids/rejected_ids (pairs, RewardTrainer's pre-tokenized format) or input_ids/labels, and the
    columns of `keep` the rows have (a held-out set's `rejected_kind`)."""
    kept = {c: c for c in keep if c in ds.column_names}

    def pair(row):
        return {"chosen_ids": encode(tokenizer, row["prompt"], completion_text(row["chosen"])),
                "rejected_ids": encode(tokenizer, row["prompt"], completion_text(row["rejected"])),
                **{f"_{c}": row[c] for c in kept}}

    def label(row):
        return {"input_ids": encode(tokenizer, row["prompt"], completion_text(row["completion"])),
                "labels": int(row["label"])}

    # keep_in_memory: no cache files written into the user's input dir
    return ds.map(label if pointwise else pair, remove_columns=ds.column_names, desc="tokenizing", keep_in_memory=True)


def drop_long(ds, max_length: int | None, path) -> tuple:
    if not max_length:
        return ds, 0
    cols = [c for c in ("input_ids", "chosen_ids", "rejected_ids") if c in ds.column_names]
    kept = ds.filter(lambda r: all(len(r[c]) <= max_length for c in cols), desc="dropping long rows",
                     keep_in_memory=True)
    if len(kept) == 0:
        raise UserError(f"every row of {path} is longer than max_length={max_length} tokens: raise trl.max_length")
    return kept, len(ds) - len(kept)


def split(ds, eval_fraction: float, seed: int):
    n_eval = round(eval_fraction * len(ds))
    if eval_fraction and (n_eval < 1 or n_eval >= len(ds)):
        raise UserError(f"eval_fraction {eval_fraction} of {len(ds)} rows leaves no held-out or no training rows: "
                        "change eval_fraction or give more rows")
    if not n_eval:
        return ds, None
    parts = ds.train_test_split(test_size=n_eval, seed=seed)
    return parts["train"], parts["test"]


# --- pointwise trainer --------------------------------------------------------------------------------


def pointwise_trainer(peft_config=None, **kw):
    import torch
    from transformers import DataCollatorWithPadding, Trainer

    if peft_config is not None:  # a plain Trainer takes no peft_config: wrap the model as TRL's trainers do
        from peft import get_peft_model

        kw["model"] = get_peft_model(kw["model"], peft_config)

    class PointwiseTrainer(Trainer):
        """BCE of the one logit against the safe/unsafe label; logs label accuracy like RewardTrainer."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.hits: list[float] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels").float()
            logits = model(**inputs, use_cache=False).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            self.hits.append(((logits > 0).float() == labels).float().mean().item())
            return (loss, logits) if return_outputs else loss

        def log(self, logs, start_time=None):
            if self.hits and "loss" in logs:
                logs["accuracy"] = sum(self.hits) / len(self.hits)
                self.hits.clear()
            super().log(logs, start_time)

    return PointwiseTrainer(data_collator=DataCollatorWithPadding(kw["processing_class"]), **kw)


# --- held-out metrics -------------------------------------------------------------------------------


def heldout_metrics(model, tokenizer, ds, pointwise: bool, batch: int) -> dict:
    """Pair accuracy (chosen scored above rejected) or label accuracy (logit > 0 iff safe), and the
    mean/std of all scores: what `rm_normalization: fixed` standardizes with."""
    model.eval()
    if pointwise:
        s = rm_scores(model, tokenizer, ds["input_ids"], batch)
        labels = ds["labels"]
        safe = [x for x, y in zip(s, labels) if y == 1]
        unsafe = [x for x, y in zip(s, labels) if y == 0]
        out = {"label_accuracy": sum((x > 0) == (y == 1) for x, y in zip(s, labels)) / len(s),
               "safe_score_mean": statistics.fmean(safe) if safe else None,
               "unsafe_score_mean": statistics.fmean(unsafe) if unsafe else None}
    else:
        c = rm_scores(model, tokenizer, ds["chosen_ids"], batch)
        r = rm_scores(model, tokenizer, ds["rejected_ids"], batch)
        s = c + r
        out = {"pair_accuracy": sum(a > b for a, b in zip(c, r)) / len(c),
               "margin_mean": statistics.fmean(a - b for a, b in zip(c, r))}
        if "_rejected_kind" in ds.column_names:  # which kind of bad reply the RM tells apart, and which not
            kinds = ds["_rejected_kind"]
            out.update({f"{k}_pair_accuracy": statistics.fmean(a > b for a, b, x in zip(c, r, kinds) if x == k)
                        for k in sorted(set(kinds))})
    out.update(score_mean=statistics.fmean(s), score_std=statistics.pstdev(s) if len(s) > 1 else 0.0, n=len(ds))
    return {k: round(v, 5) if isinstance(v, float) else v for k, v in out.items()}


# --- the stage ------------------------------------------------------------------------------------------


def run(res: Resolved, *, model: Path, data: Path, out: Path, eval_data: Path | None = None, force: bool = False,
        resume: bool = False) -> Path:
    cfg, args = res.config, res.trl  # the TRL config was built and checked with the recipe (r1cli/recipe.py)
    # --- check inputs: every check before the model loads
    model = check_model_dir(model)
    check_output(out, force, resume)
    ds = load_rows(check_input(data, "--data"), cfg.pointwise)
    given = load_rows(check_input(eval_data, "--eval-data"), cfg.pointwise, "--eval-data") if eval_data is not None else None
    # --- heavy libraries: imported here, after the checks that need none of them (seconds)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    tokenizer = AutoTokenizer.from_pretrained(model)
    fix_pad_token(tokenizer)  # a tokenizer without a pad token: eos pads
    # right padding, as TRL's pair collator and rm_scores do: with left padding the positions of
    # a text would shift with the batch it is in (no position_ids are passed)
    tokenizer.padding_side = "right"
    rows = tokenize(ds, tokenizer, cfg.pointwise)
    kind = "pointwise" if cfg.pointwise else "pairwise"
    rows, dropped = drop_long(rows, args.max_length, data)
    if given is None:
        train, heldout = split(rows, cfg.eval_fraction, cfg.seed)
    else:  # the user's held-out rows (e.g. other prompts than --data's): every --data row trains
        train, heldout = rows, drop_long(tokenize(given, tokenizer, cfg.pointwise, keep=("rejected_kind",)),
                                         args.max_length, eval_data)[0]

    # --- train (a resumed run whose weights were already saved goes straight to what is left)
    with rundir.trainer_output(out, kind="checkpoint", stage="rm", config=manifest_config(res),
                                 inputs=[model, data, *([eval_data] if eval_data else [])], force=force, resume=resume) as run_:
        if rundir.already_trained(run_):
            with suppress_seqcls_warning():
                scorer = AutoModelForSequenceClassification.from_pretrained(run_.partial, dtype=torch.float32)
        else:
            torch.manual_seed(cfg.seed)  # the new score head's init
            with suppress_seqcls_warning():
                lm = AutoModelForSequenceClassification.from_pretrained(
                    model, num_labels=1, **{"dtype": model_dtype(args),
                                            **lora.load_kwargs(cfg.peft)})
            fix_pad_token(tokenizer, lm)
            telemetry = Telemetry(run_, f"r1 rm ({kind})", show=("loss", "accuracy"))
            common = dict(model=lm, args=args, train_dataset=train, processing_class=tokenizer, callbacks=[telemetry],
                          peft_config=lora.lora_config(cfg.peft, task_type="SEQ_CLS"))  # LoRA + a trained score head
            trainer = pointwise_trainer(**common) if cfg.pointwise else RewardTrainer(**common)
            rundir.set_callbacks(trainer)
            result = trainer.train(resume_from_checkpoint=rundir.resume_checkpoint(run_))
            scorer = rundir.save_checkpoint(trainer, tokenizer, run_)
            run_.counts.update(rows=len(ds), train=len(train), heldout=len(heldout) if heldout else 0,
                               dropped_too_long=dropped, steps=trainer.state.global_step)
            run_.metrics.update(kind=kind, train_runtime_s=round(result.metrics["train_runtime"], 2),
                                train_loss=round(result.metrics.get("train_loss", float("nan")), 5))
            rundir.mark_trained(run_)

        # --- held-out accuracy and the score statistics r1 align normalizes with
        if rundir.is_main_process():
            # without a held-out split, the score statistics still come from (some) training rows
            measured = heldout if heldout is not None else train.select(range(min(500, len(train))))
            m = heldout_metrics(scorer, tokenizer, measured, cfg.pointwise, args.per_device_eval_batch_size)
            run_.metrics.update(m, measured_on="train" if heldout is None else "eval_data" if given is not None else "heldout")
            acc = m.get("label_accuracy", m.get("pair_accuracy"))
            rundir.console.print(f"[bold]r1 rm[/] ({kind}): {'label' if cfg.pointwise else 'pair'} accuracy "
                                   f"{100 * acc:.1f}% on {m['n']} {run_.metrics['measured_on']} rows; "
                                   f"scores {m['score_mean']:.3g} ± {m['score_std']:.3g}")
    return out
