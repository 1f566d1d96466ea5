"""The one HTTP client for every remote model: the judge's chat completions, the reward models' /classify.

    client = Client("http://host:8000", settings, what="--helpful-rm")  # settings: an HTTPSettings
    replies = client.post_many("/classify", [body, body, ...])    # one reply (a dict) or Failure per body

The standard library (urllib) and a thread pool: the requests are I/O-bound, and no extra
dependency is worth it for POSTing JSON. Each request has a timeout (on the whole reply, not per
byte); a timeout, a refused or cut-off connection, 429 and 5xx are retried with exponential
backoff (backoff_s, 2 x backoff_s, ...); what still fails is a `Failure` with a reason (timeout
or error), never an exception, so each caller decides what a failure means: a rejection for the
judge, None (the row is skipped) for a reward model. `max_failed_share` turns "most of a batch
failed" into one UserError line, since a server that is down for good should stop a run, not
train it on nothing. The client counts what it did (`stats`): requests sent, retries, failures,
latency p50/p95 of the answered requests.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from r1cli.errors import UserError

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class Failure:
    """A request that got no usable reply: reason `timeout` (no whole reply within timeout_s, after every
    retry) or `error` (an HTTP error, a refused or cut-off connection, a reply that is not HTTP or not JSON)."""

    reason: str
    detail: str = ""


@dataclass
class Stats:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    failures: int = 0  # calls that gave up (a Failure)
    latencies: list = field(default_factory=list)  # seconds, one per answered request
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self, since: int = 0) -> dict:
        """Counts so far, and the latency percentiles of the answers from index `since` on."""
        lat = sorted(self.latencies[since:])
        out = {"requests": self.requests, "retries": self.retries, "failures": self.failures}
        if lat:
            q = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) > 1 else [lat[0]] * 19
            out.update(latency_p50_s=round(statistics.median(lat), 4), latency_p95_s=round(q[18], 4))
        return out


def base_url(url: str) -> str:
    """`http://host:8000/v1` -> `http://host:8000`: vLLM serves /v1/models under /v1 but /classify at the root."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def check_reachable(url: str, what: str, timeout_s: float) -> None:
    """Before any model loads: can we open a connection to `url` at all? A wrong port or a server that
    is not up would otherwise cost a model load and more. Only the connection is tried (through a
    proxy, nothing is: urllib goes there instead); failures once running are retried per request."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if not host:
        raise UserError(f"{what} {url!r} names no host: give e.g. http://localhost:8000/v1")
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return
    try:
        socket.create_connection((host, port), timeout=min(timeout_s, 10.0)).close()
    except OSError as e:
        why = e.strerror or e.__class__.__name__
        raise UserError(f"{what} {url} is unreachable ({why}): start the server, or fix the host and port") from None


class Client:
    """POST/GET JSON to paths under one URL with the retry rules above; `settings` is an HTTPSettings
    (r1cli/config.py: concurrency, retries, backoff_s, timeout_s)."""

    def __init__(self, url: str, settings, what: str, headers: dict | None = None,
                 max_failed_share: float | None = None, share_setting: str = ""):
        self.url, self.settings, self.what = url.rstrip("/"), settings, what
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.max_failed_share, self.share_setting = max_failed_share, share_setting
        self.stats = Stats()

    # --- one request -------------------------------------------------------------------------

    def request(self, path: str, body: dict | None = None, retries: int | None = None) -> dict | Failure:
        """The reply's JSON (POST `body`, or GET without one), or a Failure after every retry."""
        retries = self.settings.retries if retries is None else retries
        data = None if body is None else json.dumps(body).encode()
        failure = Failure("error")
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            with self.stats.lock:
                self.stats.requests += 1
                self.stats.retries += bool(attempt)
            t0 = time.monotonic()
            try:
                req = urllib.request.Request(self.url + path, data=data, headers=self.headers,
                                             method="GET" if body is None else "POST")
                with urllib.request.urlopen(req, timeout=self.settings.timeout_s) as resp:
                    raw = _read_reply(resp, t0 + self.settings.timeout_s)
            except urllib.error.HTTPError as e:
                failure = Failure("error", f"HTTP {e.code}: {_error_text(e)}")
                if e.code in RETRY_STATUS:
                    continue
                break
            except (TimeoutError, socket.timeout):
                failure = Failure("timeout", f"no reply within {self.settings.timeout_s:g}s")
                continue
            except urllib.error.URLError as e:
                timeout = isinstance(e.reason, (TimeoutError, socket.timeout))
                failure = Failure("timeout" if timeout else "error", str(e.reason))
                continue
            except (ConnectionError, OSError, http.client.HTTPException) as e:  # also: cut off mid-reply, not HTTP
                failure = Failure("error", e.__class__.__name__)
                continue
            try:
                reply = json.loads(raw)
            except ValueError:
                failure = Failure("error", "the reply is not JSON")
                break
            with self.stats.lock:
                self.stats.latencies.append(time.monotonic() - t0)
            return reply
        with self.stats.lock:
            self.stats.failures += 1
        return failure

    # --- a batch -------------------------------------------------------------------------------

    def post_many(self, path: str, bodies: list[dict], sizes: list[int] | None = None) -> list[dict | Failure]:
        """One reply or Failure per body, in order, `concurrency` in flight. `sizes` (rows per body)
        weighs the failed share; above max_failed_share the whole call is a UserError."""
        if not bodies:
            return []
        with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, len(bodies))) as pool:
            replies = list(pool.map(lambda b: self.request(path, b), bodies))
        if self.max_failed_share is not None:
            sizes = sizes or [1] * len(bodies)
            failed = sum(n for n, r in zip(sizes, replies) if isinstance(r, Failure))
            if failed and failed / sum(sizes) > self.max_failed_share:
                last = next(r for r in reversed(replies) if isinstance(r, Failure))
                raise UserError(f"{self.what} {self.url}: {failed} of {sum(sizes)} rows got no answer after "
                                f"{self.settings.retries} retries (last: {last.detail or last.reason}): check the "
                                f"server, or raise {self.share_setting} (now {self.max_failed_share:g})")
        return replies


def _error_text(e: urllib.error.HTTPError) -> str:
    """The message of an error reply (vLLM: {"error": {"message": ...}} or {"message": ...}), one line."""
    try:
        body = json.loads(e.read() or b"{}")
        msg = body.get("error", body)
        msg = msg.get("message", "") if isinstance(msg, dict) else str(msg)
    except (ValueError, AttributeError, OSError, http.client.HTTPException):
        msg = ""
    return " ".join(str(msg or e.reason).split())[:200]


def _read_reply(resp, deadline: float) -> bytes:
    """The reply body a piece at a time against one deadline: the socket timeout restarts with
    every byte received, so a server dripping its reply would otherwise hold a worker forever."""
    chunks = []
    while chunk := resp.read1(1 << 16):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("the reply took longer than timeout_s")
    if getattr(resp, "length", None):  # read1 returns b"" when the server hangs up early
        raise http.client.IncompleteRead(b"".join(chunks), resp.length)
    return b"".join(chunks)
