"""The generative judge: a model reads (question, reference answer, response) and returns a
JSON verdict `{"analysis": ..., "correctness": true|false}`.

DeepSeek-R1 stage 3 verifies answers that no rule can check by "feeding the ground-truth
and model predictions into DeepSeek-V3 for judgment". `r1 reject-sample` does the same with
either judge:

    r1 reject-sample ... --judge runs/judge_model                 # a local model dir (generation backend)
    r1 reject-sample ... --judge-url http://host:8000/v1          # any OpenAI-compatible server, e.g.
                                                                  # `vllm serve MODEL --served-model-name judge`

The HTTP judge asks through the one HTTP client (r1cli/generation/remote.py: a timeout per
request, retries with exponential backoff on a timeout, a refused connection, 429 and 5xx);
what still fails becomes a rejection with its own reason, never an exception in the stage:

    correct / incorrect    the verdict's `correctness`
    judge_unparseable      the judge's reply holds no JSON verdict we can read
    judge_timeout          no whole reply within timeout_s (a server dripping bytes too), after every retry
    judge_error            an HTTP error, a refused or cut-off connection, a reply that is not HTTP or not
                           chat-completions JSON
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from r1cli.config import JudgeConfig, SamplingConfig
from r1cli.errors import UserError
from r1cli.generation import load_generator, remote

JUDGE_PROMPT = """You are checking a response against a reference answer.

Question:
{question}

Reference answer:
{reference}

Response:
{response}

Does the response give the same final answer as the reference (equivalent forms count as the same)?
Reply with JSON only: {{"analysis": "<one or two sentences>", "correctness": true or false}}"""

REASONS = ("incorrect", "judge_unparseable", "judge_timeout", "judge_error")


@dataclass
class Verdict:
    correct: bool
    reason: str | None = None  # None when correct, else one of REASONS
    analysis: str = ""


# --- reading a verdict ---------------------------------------------------------------------------

_TRUE = {"true", "yes", "correct", "1", "right", "consistent"}
_FALSE = {"false", "no", "incorrect", "0", "wrong", "inconsistent"}


def _objects(text: str):
    """Every JSON object in `text`, last first (a model may think before it answers)."""
    decoder = json.JSONDecoder()
    found = []
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return reversed(found)


def parse_verdict(text: str) -> Verdict:
    """The last JSON object with a readable `correctness`; judge_unparseable when none has one."""
    text = re.sub(r"```(?:json)?", "", text or "")
    for obj in _objects(text):
        value = obj.get("correctness", obj.get("correct"))
        analysis = str(obj.get("analysis", ""))
        if isinstance(value, bool):
            return Verdict(value, None if value else "incorrect", analysis)
        if isinstance(value, (int, float)) and value in (0, 1):
            return Verdict(bool(value), None if value else "incorrect", analysis)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            ok = value.strip().lower() in _TRUE
            return Verdict(ok, None if ok else "incorrect", analysis)
    return Verdict(False, "judge_unparseable", (text or "")[:200])


def judge_prompt(cfg: JudgeConfig, question: str, reference: str, response: str) -> str:
    # str.replace, not format: questions and responses are full of braces (LaTeX, code)
    text = cfg.prompt or JUDGE_PROMPT.replace("{{", "\0").replace("}}", "\1")
    for key, value in (("{question}", question), ("{reference}", reference), ("{response}", response)):
        text = text.replace(key, value.replace("{", "\2").replace("}", "\3"))
    return text.replace("\0", "{").replace("\1", "}").replace("\2", "{").replace("\3", "}")


def check_environment(cfg: JudgeConfig) -> None:
    """What the judge settings need from this machine (the settings themselves: JudgeConfig.check)."""
    if cfg.api_key_env and cfg.url and not os.environ.get(cfg.api_key_env):
        raise UserError(f"judge.api_key_env names {cfg.api_key_env}, which is not set: export it or drop api_key_env")


def check_reachable(cfg: JudgeConfig) -> None:
    """Before the model loads: a wrong port or a judge that is not up would otherwise cost a whole
    sampling run that rejects every sample with judge_error."""
    remote.check_reachable(cfg.url, "--judge-url", cfg.timeout_s)


# --- the judges ----------------------------------------------------------------------------------


class HTTPJudge:
    """An OpenAI-compatible chat-completions endpoint (vllm serve, sglang, TGI, a hosted API)."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        url = cfg.url.rstrip("/").removesuffix("/chat/completions")
        headers = {"Authorization": f"Bearer {os.environ[cfg.api_key_env]}"} if cfg.api_key_env else {}
        # no max_failed_share: a judge that fails rejects the sample with a reason, it never stops the stage
        self.client = remote.Client(url, cfg, "--judge-url", headers=headers)

    def judge(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        """One verdict per (question, reference, response), in order."""
        bodies = [{"model": self.cfg.served_model, "messages": [{"role": "user", "content": judge_prompt(self.cfg, *it)}],
                   "temperature": 0.0, "max_tokens": self.cfg.max_new_tokens} for it in items]
        return [_verdict(reply) for reply in self.client.post_many("/chat/completions", bodies)]


def _verdict(reply) -> Verdict:
    if isinstance(reply, remote.Failure):
        reason = "judge_timeout" if reply.reason == "timeout" else "judge_error"
        return Verdict(False, reason, reply.detail or "gave up after retries")
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Verdict(False, "judge_error", "the reply is not chat-completions JSON")
    return parse_verdict(content if isinstance(content, str) else "")


class LocalJudge:
    """A judge model loaded through the generation backend, decoding greedily."""

    def __init__(self, generator, cfg: JudgeConfig):
        self.generator = generator
        self.cfg = cfg

    def judge(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        if not items:
            return []
        prompts = [[{"role": "user", "content": judge_prompt(self.cfg, *it)}] for it in items]
        greedy = SamplingConfig(temperature=0.0, max_new_tokens=self.cfg.max_new_tokens, batch_size=self.cfg.batch_size)
        outs = self.generator.generate(prompts, greedy)
        return [parse_verdict(o[0].text) for o in outs]


def load_judge(cfg: JudgeConfig, backend: str = "transformers"):
    """The judge the config names (None when it names none)."""
    if cfg.url:
        return HTTPJudge(cfg)
    if cfg.model_dir:

        return LocalJudge(load_generator(cfg.model_dir, backend=backend, what="--judge"), cfg)
    return None
