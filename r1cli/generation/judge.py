"""The generative judge: a model reads (question, reference answer, response) and returns a
JSON verdict `{"analysis": ..., "correctness": true|false}`.

DeepSeek-R1 stage 3 verifies answers that no rule can check by "feeding the ground-truth
and model predictions into DeepSeek-V3 for judgment". `r1 reject-sample` does the same with
either judge:

    r1 reject-sample ... --judge runs/judge_model                 # a local model dir (generation backend)
    r1 reject-sample ... --judge-url http://host:8000/v1          # any OpenAI-compatible server, e.g.
                                                                  # `vllm serve MODEL --served-model-name judge`

The HTTP judge is the standard library (urllib) and a thread pool: the requests are
I/O-bound, and no extra dependency is worth it for one POST. Each request has a timeout;
a timeout, a refused connection, 429 and 5xx are retried with exponential backoff; what
still fails becomes a rejection with its own reason, never an exception in the stage:

    correct / incorrect    the verdict's `correctness`
    judge_unparseable      the judge's reply holds no JSON verdict we can read
    judge_timeout          no whole reply within timeout_s (a server dripping bytes too), after every retry
    judge_error            an HTTP error, a refused or cut-off connection, a reply that is not HTTP or not
                           chat-completions JSON
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from r1cli.config import JudgeConfig, SamplingConfig
from r1cli.errors import UserError
from r1cli.generation import load_generator

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
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


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
    """Before the model loads: can we open a connection to --judge-url at all? A wrong port or a
    server that is not up would otherwise cost a whole sampling run that rejects every sample
    with judge_error. Only the connection is tried (through a proxy, nothing is: urllib goes
    there instead); failures once running are retried per request."""
    parts = urllib.parse.urlsplit(cfg.url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if not host:
        raise UserError(f"--judge-url {cfg.url!r} names no host: give e.g. http://localhost:8000/v1")
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return
    try:
        socket.create_connection((host, port), timeout=min(cfg.timeout_s, 10.0)).close()
    except OSError as e:
        why = e.strerror or e.__class__.__name__
        raise UserError(f"--judge-url {cfg.url} is unreachable ({why}): start the judge server, or fix the "
                        "host and port") from None


# --- the judges ----------------------------------------------------------------------------------


class HTTPJudge:
    """An OpenAI-compatible chat-completions endpoint (vllm serve, sglang, TGI, a hosted API)."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        url = cfg.url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.headers = {"Content-Type": "application/json"}
        if cfg.api_key_env:
            self.headers["Authorization"] = f"Bearer {os.environ[cfg.api_key_env]}"

    def judge(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        """One verdict per (question, reference, response), in order."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.cfg.concurrency, len(items))) as pool:
            return list(pool.map(self._one, items))

    def _one(self, item: tuple[str, str, str]) -> Verdict:
        prompt = judge_prompt(self.cfg, *item)
        body = json.dumps({"model": self.cfg.served_model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0.0, "max_tokens": self.cfg.max_new_tokens}).encode()
        reason = "judge_error"
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                time.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(self.endpoint, data=body, headers=self.headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    raw = _read_reply(resp, time.monotonic() + self.cfg.timeout_s)
            except urllib.error.HTTPError as e:
                reason = "judge_error"
                if e.code in _RETRY_STATUS:
                    continue
                return Verdict(False, reason, f"HTTP {e.code}")
            except (TimeoutError, socket.timeout):
                reason = "judge_timeout"
                continue
            except urllib.error.URLError as e:
                reason = "judge_timeout" if isinstance(e.reason, (TimeoutError, socket.timeout)) else "judge_error"
                continue
            except (ConnectionError, OSError, http.client.HTTPException):  # also: cut off mid-reply, not HTTP
                reason = "judge_error"
                continue
            try:
                content = json.loads(raw)["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                return Verdict(False, "judge_error", "the reply is not chat-completions JSON")
            return parse_verdict(content if isinstance(content, str) else "")
        return Verdict(False, reason, "gave up after retries")


def _read_reply(resp, deadline: float) -> bytes:
    """The reply body a piece at a time against one deadline: the socket timeout restarts with
    every byte received, so a server dripping its reply would otherwise hold a worker forever."""
    chunks = []
    while chunk := resp.read1(1 << 16):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("the judge's reply took longer than timeout_s")
    if getattr(resp, "length", None):  # read1 returns b"" when the server hangs up early
        raise http.client.IncompleteRead(b"".join(chunks), resp.length)
    return b"".join(chunks)


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
