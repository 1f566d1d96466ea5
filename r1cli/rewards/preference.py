"""Reward-model rewards for stage 4: `helpfulness` and `harmlessness`, ordinary registry entries.

    r1 score SAMPLES --rewards helpfulness,harmlessness --helpful-rm runs/demo/rm_helpful \\
        --harmless-rm runs/demo/rm_safety --out SCORED
    r1 align ... --helpful-rm runs/demo/rm_helpful --harmless-rm runs/demo/rm_safety

Paper (R1, stage 4): general prompts get a helpfulness reward model that sees only the final
summary, so a long or flattering CoT cannot sway it, and a harmlessness reward model that sees
the whole output, CoT included, since harm in the reasoning counts too.

- Routing: both return None on rows whose `domain` is set and is not "general" (reasoning rows
  get the rule rewards, which return None on general rows). A row without `domain` gets them,
  as DESIGN.md says a row without domain is not excluded from any reward.
- The summary is cut with templates.split_completion, the code the format reward uses; a CoT
  that never closes leaves no summary (the text before `<think>`, usually empty).
- What the RM reads is built by `encode()`, which `r1 rm` also uses to train: prompt + reply
  through the RM tokenizer's chat template (TRL's conversational format), or prompt + reply +
  eos as plain text when it has none. Any HF sequence-classification checkpoint with one label
  (a public reward model) works; a missing pad token is set from eos.
- A reward model may be served instead (`--helpful-rm http://host:8000/v1`): the same ids go to
  vLLM's /classify (r1cli/rewards/served.py); a row it gave no score after every retry is None.
- Normalisation of the raw logit (`rm_normalization`): sigmoid (0..1, the scale of the rule
  rewards; for the pointwise safety RM it is P(safe)), none, running (z-score over all scores
  seen so far), fixed (z-score with the mean/std `r1 rm` measured on its held-out rows).
- Schedule (`preference_rewards_from`): a step (>= 1) or a fraction of max_steps (< 1), read
  from TRL's `trainer_state`; before it the reward returns None. The RM still scores the batch
  and logs `rm/<name>/raw_mean` (and `frac_positive`: for harmlessness the safe rate) through
  TRL's `log_metric`, so metrics.jsonl shows the RM scores over the whole run.
"""

from __future__ import annotations

import math
from pathlib import Path

from r1cli.artifacts import check_model_dir, read_manifest
from r1cli.errors import UserError
from r1cli.rewards.common import fix_pad_token
from r1cli.rewards.served import ServedRM, is_url, served_rm
from r1cli.templates import THINK_OPEN, completion_text, split_completion

GENERAL = "general"
NORMALIZATIONS = ("sigmoid", "none", "running", "fixed")
_LOADED: dict[str, tuple] = {}  # resolved dir -> (model, tokenizer): one copy when both rewards share an RM


# --- reward-model dirs -------------------------------------------------------------------------


def check_rm_dir(path, what: str) -> Path:
    """Refuse a dir that is not a one-label sequence-classification checkpoint (before loading it)."""
    from transformers import AutoConfig

    p = check_model_dir(path, what)
    cfg = AutoConfig.from_pretrained(p)
    archs = list(getattr(cfg, "architectures", None) or [])
    if not any(a.endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"{what} {p} is not a sequence-classification model (config.json architectures: "
                        f"{', '.join(archs) or 'none'}): train one with `r1 rm`, or give an HF reward model")
    if cfg.num_labels != 1:
        raise UserError(f"{what} {p} has {cfg.num_labels} labels; a reward model gives one score: use a num_labels=1 "
                        "checkpoint (`r1 rm` makes one)")
    return p


def check_rm(value, what: str, rm_http=None) -> Path | ServedRM:
    """A reward-model dir (checked, not loaded) or, for an http:// URL, the served RM after its
    start-up checks (r1cli/rewards/served.py): either way before any model loads."""
    if is_url(value):
        return served_rm(value, rm_http, what)
    return check_rm_dir(value, what)


def load_rm(path) -> tuple:
    """(model, tokenizer) of a reward-model dir, in eval mode on this process's device, cached."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    key = str(Path(path).resolve())
    if key not in _LOADED:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=torch.float32 if device.type == "cpu" else "auto").to(device).eval()
        fix_pad_token(tokenizer, model)
        _LOADED[key] = (model, tokenizer)
    return _LOADED[key]


# --- what the RM reads -------------------------------------------------------------------------


def as_messages(prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def encode(tokenizer, prompt, response: str) -> list[int]:
    """Token ids of prompt + reply as the RM sees them, in training (`r1 rm`) and in scoring."""
    if getattr(tokenizer, "chat_template", None):
        msgs = as_messages(prompt) + [{"role": "assistant", "content": response}]
        return list(tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])
    text = prompt if isinstance(prompt, str) else "\n".join(str(m.get("content") or "") for m in prompt)
    return list(tokenizer(text + response + (tokenizer.eos_token or ""))["input_ids"])


def summary_view(completion, prefilled_think: bool = False) -> str:
    """What the helpfulness RM sees: the summary after `</think>` only."""
    reasoning, summary = split_completion(completion, prefilled_think)
    if reasoning is None and THINK_OPEN in summary:  # the CoT never closed: the user gets no summary
        summary = summary.split(THINK_OPEN)[0].strip()
    return summary


def full_view(completion, prefilled_think: bool = False) -> str:
    """What the harmlessness RM sees: the whole output, CoT included (with the pre-filled tag back)."""
    text = completion_text(completion)
    if prefilled_think and not text.lstrip().startswith(THINK_OPEN):
        text = f"{THINK_OPEN}\n{text}"
    return text


def rm_scores(model, tokenizer, ids: list[list[int]], batch_size: int = 16) -> list[float]:
    """Raw scores (the one logit) of tokenized texts; over-long texts keep their end (the reply)."""
    import torch

    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None) or 1 << 30
    ids = [x[-limit:] for x in ids]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    out = [0.0] * len(ids)
    pad = tokenizer.pad_token_id
    with torch.inference_mode():
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            x = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(x)
            for row, i in enumerate(chunk):  # right padding, as TRL's reward collator
                x[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            logits = model(input_ids=x.to(model.device), attention_mask=mask.to(model.device)).logits[:, 0]
            for i, v in zip(chunk, logits.float().tolist()):
                out[i] = v
    return out


# --- normalisation and schedule ------------------------------------------------------------------


class Normalizer:
    """Raw RM logit -> reward (see the module docstring).

    >>> Normalizer("none")([1.5, -2.0])
    [1.5, -2.0]
    >>> running = Normalizer("running")
    >>> running.update([1.0, 3.0])  # the reward calls update() with each batch before scoring it
    >>> running([1.0, 3.0])  # mean 2, sample std sqrt(2)
    [-0.7071067811865475, 0.7071067811865475]
    """

    def __init__(self, kind: str, rm_dir: Path | None = None):
        if kind not in NORMALIZATIONS:
            raise UserError(f"rm_normalization must be one of {', '.join(NORMALIZATIONS)}, got {kind!r}")
        self.kind, self.n, self.mean, self.m2 = kind, 0, 0.0, 0.0
        if kind == "fixed":
            metrics = (read_manifest(rm_dir) or {}).get("metrics", {}) if rm_dir else {}
            if "score_mean" not in metrics or not metrics.get("score_std"):
                raise UserError(f"rm_normalization fixed needs the score mean/std that `r1 rm` writes into its "
                                f"manifest, and {rm_dir} has none: use sigmoid or running")
            self.mean, self.std = float(metrics["score_mean"]), float(metrics["score_std"])

    def update(self, raw: list[float]) -> None:
        for x in raw:  # Welford: running mean/variance over every score seen
            self.n += 1
            d = x - self.mean
            self.mean += d / self.n
            self.m2 += d * (x - self.mean)

    def __call__(self, raw: list[float]) -> list[float]:
        if self.kind == "sigmoid":
            return [1 / (1 + math.exp(-max(-60.0, min(60.0, x)))) for x in raw]
        if self.kind == "none":
            return list(raw)
        if self.kind == "running":
            std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 1.0
            return [(x - self.mean) / max(std, 1e-6) for x in raw]
        return [(x - self.mean) / self.std for x in raw]


def start_step(start: float, max_steps: int) -> int:
    """`preference_rewards_from` as a step: a step (>= 1) as it is, a fraction (< 1) of max_steps."""
    return int(start) if start >= 1 else math.ceil(start * (max_steps or 0) - 1e-9)


def active(trainer_state, start: float) -> bool:
    """Whether the preference rewards apply at this step (always outside a trainer, e.g. r1 score)."""
    if trainer_state is None or not start:
        return True
    return trainer_state.global_step >= start_step(start, getattr(trainer_state, "max_steps", 0))


def applies(domain) -> bool:
    return domain is None or domain == "" or domain == GENERAL


# --- the rewards ------------------------------------------------------------------------------------


def _rm_reward(name: str, rm, what: str, view, prefilled_think: bool, rm_normalization: str,
               preference_rewards_from: float, rm_batch_size: int, rm_http):
    if not rm:
        raise UserError(f"reward {name!r} needs a reward model: pass {what} DIR (or set {what[2:].replace('-', '_')} "
                        "in the recipe)")
    source = check_rm(rm, what, rm_http)
    if isinstance(source, ServedRM):
        norm = Normalizer(rm_normalization, Path(source.root))  # `fixed` reads the served dir's manifest
        tokenizer = source.tokenizer

        def score(ids):
            return source.scores(ids, rm_batch_size)
    else:
        norm = Normalizer(rm_normalization, source)
        model, tokenizer = load_rm(source)

        def score(ids):
            return rm_scores(model, tokenizer, ids, rm_batch_size)

    def reward(prompts, completions, completion_ids=None, domain=None, trainer_state=None, log_metric=None, **_):
        out: list[float | None] = [None] * len(completions)
        rows = [i for i in range(len(completions)) if applies(None if domain is None else domain[i])]
        if not rows:
            return out
        ids = [encode(tokenizer, prompts[i], view(completions[i], prefilled_think)) for i in rows]
        answered = len(source.client.stats.latencies) if isinstance(source, ServedRM) else 0
        # a served RM that gave no score for a row after every retry: None there (TRL skips it), never a made-up 0
        scored = [(i, v) for i, v in zip(rows, score(ids)) if v is not None]
        raw = [v for _, v in scored]
        norm.update(raw)
        if log_metric is not None:
            if raw:
                log_metric(f"rm/{name}/raw_mean", sum(raw) / len(raw))
                log_metric(f"rm/{name}/frac_positive", sum(x > 0 for x in raw) / len(raw))
            if isinstance(source, ServedRM):  # counts so far; latency of this call's requests
                for key, value in source.summary(since=answered).items():
                    log_metric(f"rm_http/{name}/{key}", value)
        if not active(trainer_state, preference_rewards_from):
            return out
        for (i, _), v in zip(scored, norm(raw)):
            out[i] = v
        return out

    reward.__name__ = name
    reward.required_columns = ()  # `domain` routes when present; without it every row is scored
    reward.rm_dir = source if isinstance(source, Path) else None
    reward.served = source if isinstance(source, ServedRM) else None
    return reward


def helpfulness(helpful_rm=None, prefilled_think: bool = False, rm_normalization: str = "sigmoid",
                preference_rewards_from: float = 0.0, rm_batch_size: int = 16,
                rm_http=None, **_):
    r"""The `helpfulness` reward (R1 stage 4): a reward model's score of the prompt + the SUMMARY only.

    The RM never sees the CoT (`summary_view`: the text after `</think>`), so a long or
    flattering chain of thought cannot sway it; a CoT that never closes leaves no summary.

    Returns:
        The reward function `helpfulness(prompts, completions, completion_ids=None, **columns)`, which
        gives the normalised RM score per completion, or None where it does not apply: a row
        whose `domain` is set and is not `general` (the rule rewards score those), and every
        row before the step `preference_rewards_from` (the RM still scores and logs them).

    Args:
        prompts (`list`):
            Plain strings or chat messages: the RM reads prompt + reply through its tokenizer's
            chat template (`encode`, as `r1 rm` trained it).
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Not read (the RM has its own tokenizer).
        domain (`list[str]`, column, *optional*):
            Routes the rows: set and not `general` -> None.
        trainer_state, log_metric (*optional*):
            Passed by TRL: the step that `preference_rewards_from` is compared with, and where
            `rm/helpfulness/raw_mean` and `rm/helpfulness/frac_positive` are logged on every call.
        helpful_rm (path or URL, factory option, required):
            The helpfulness reward model: a one-label sequence-classification checkpoint (`r1 rm`
            makes one; `--helpful-rm` on the command line), or `http://HOST:PORT/v1` of one served by
            vLLM (r1cli/rewards/served.py). Missing: a UserError.
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: the summary is the text after `</think>`.
        rm_normalization (`str`, factory option, defaults to `"sigmoid"`):
            Raw logit -> reward: `sigmoid` (0..1), `none`, `running` (z-score over every score
            seen so far) or `fixed` (z-score with the mean/std `r1 rm` measured); see Normalizer.
        preference_rewards_from (`float`, factory option, defaults to `0.0`):
            The first step that gets the reward: a step (>= 1), or a fraction of max_steps (< 1);
            0 means from the start. Outside a trainer (`r1 score`) it always applies.
        rm_batch_size (`int`, factory option, defaults to `16`):
            Texts per RM forward pass (per HTTP request, for a served RM).
        rm_http (`RMServerConfig`, factory option, *optional*):
            How a served RM is asked: served model name, tokenizer dir, timeouts, retries, the share
            of failed rows that stops the run (r1cli/config.py). Rows a served RM gave no score are None.
        **_:
            Options meant for other rewards (a stage hands every reward the same ones): ignored.

    Example (the factory loads the RM, so this shows what needs none: which rows it scores and
    what it reads):
    >>> from r1cli.rewards.preference import applies, summary_view
    >>> [applies(domain) for domain in ["general", None, "math", "code"]]
    [True, True, False, False]
    >>> summary_view("<think>\nThe user wants a greeting.\n</think>\nHello! How can I help?")
    'Hello! How can I help?'
    >>> summary_view("<think>\nThe user wants a greeting, so")  # the CoT never closed
    ''
    """
    return _rm_reward("helpfulness", helpful_rm, "--helpful-rm", summary_view, prefilled_think, rm_normalization,
                      preference_rewards_from, rm_batch_size, rm_http)


def harmlessness(harmless_rm=None, prefilled_think: bool = False, rm_normalization: str = "sigmoid",
                 preference_rewards_from: float = 0.0, rm_batch_size: int = 16,
                 rm_http=None, **_):
    r"""The `harmlessness` reward (R1 stage 4): a reward model's score of the prompt + the WHOLE output.

    The RM sees the CoT too (`full_view`), since harm in the reasoning counts; with
    prefilled_think the opening `<think>` the prompt supplied is put back in front. For the
    pointwise safety RM that `r1 rm` trains, the default sigmoid score is P(safe).

    Returns:
        The reward function `harmlessness(prompts, completions, completion_ids=None, **columns)`, which
        gives the normalised RM score per completion, or None where it does not apply: a row
        whose `domain` is set and is not `general` (the rule rewards score those), and every
        row before the step `preference_rewards_from` (the RM still scores and logs them).

    Args:
        prompts (`list`):
            Plain strings or chat messages: the RM reads prompt + reply through its tokenizer's
            chat template (`encode`, as `r1 rm` trained it).
        completions (`list[str]` or `list[list[dict]]`):
            Plain texts, or TRL's chat completions (one assistant message each).
        completion_ids (`list[list[int]]`, *optional*):
            Not read (the RM has its own tokenizer).
        domain (`list[str]`, column, *optional*):
            Routes the rows: set and not `general` -> None.
        trainer_state, log_metric (*optional*):
            Passed by TRL: the step that `preference_rewards_from` is compared with, and where
            `rm/harmlessness/raw_mean` and `rm/harmlessness/frac_positive` are logged on every call.
        harmless_rm (path or URL, factory option, required):
            The harmlessness reward model: a one-label sequence-classification checkpoint (`r1 rm`
            makes one; `--harmless-rm` on the command line), or `http://HOST:PORT/v1` of one served by
            vLLM (r1cli/rewards/served.py). Missing: a UserError.
        prefilled_think (`bool`, factory option, defaults to `False`):
            The prompt ends with `<think>`: `<think>\n` is put back in front of the completion.
        rm_normalization (`str`, factory option, defaults to `"sigmoid"`):
            Raw logit -> reward: `sigmoid` (0..1), `none`, `running` (z-score over every score
            seen so far) or `fixed` (z-score with the mean/std `r1 rm` measured); see Normalizer.
        preference_rewards_from (`float`, factory option, defaults to `0.0`):
            The first step that gets the reward: a step (>= 1), or a fraction of max_steps (< 1);
            0 means from the start. Outside a trainer (`r1 score`) it always applies.
        rm_batch_size (`int`, factory option, defaults to `16`):
            Texts per RM forward pass (per HTTP request, for a served RM).
        rm_http (`RMServerConfig`, factory option, *optional*):
            How a served RM is asked: served model name, tokenizer dir, timeouts, retries, the share
            of failed rows that stops the run (r1cli/config.py). Rows a served RM gave no score are None.
        **_:
            Options meant for other rewards (a stage hands every reward the same ones): ignored.

    Example (the factory loads the RM, so this shows what needs none: which rows it scores,
    what it reads, and the default normalisation of a raw score):
    >>> from r1cli.rewards.preference import Normalizer, applies, full_view
    >>> [applies(domain) for domain in ["general", None, "math", "code"]]
    [True, True, False, False]
    >>> print(full_view("I should refuse.\n</think>\nI can't help with that.", prefilled_think=True))
    <think>
    I should refuse.
    </think>
    I can't help with that.
    >>> [round(p, 3) for p in Normalizer("sigmoid")([0.0, 3.0, -3.0])]  # raw logit 0 -> P(safe) 0.5
    [0.5, 0.953, 0.047]
    """
    return _rm_reward("harmlessness", harmless_rm, "--harmless-rm", full_view, prefilled_think, rm_normalization,
                      preference_rewards_from, rm_batch_size, rm_http)
