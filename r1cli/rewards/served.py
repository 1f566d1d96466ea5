"""A reward model served over HTTP, as OpenRLHF serves its RMs: vLLM's pooling API on a node of its own.

    make serve-rm RM=runs/qwen/rm_helpful PORT=8001      # vLLM's server, served name "rm", on 127.0.0.1
    r1 align ... --helpful-rm http://127.0.0.1:8001/v1 --harmless-rm http://127.0.0.1:8002/v1

At 7B two more full models on every training rank do not fit beside the policy; served, they cost
the trainer a tokenizer and a thread pool. What is sent is what the in-process RM reads: the token
ids of rewards.preference.encode (the RM tokenizer's chat template), since vLLM's /classify takes
token ids and then tokenizes nothing, so a served score equals the in-process one on the same
checkpoint (up to float noise). Two details keep them equal:
- an over-long input keeps its end, cut to the server's max_model_len (rm_scores cuts to the
  model's max_position_embeddings, which is vLLM's default max_model_len);
- trailing pad tokens are dropped: transformers' sequence classifier scores the last token that is
  not the pad token, vLLM the last token. They differ when pad = eos and the text ends with eos
  (a tokenizer without a chat template: encode appends eos).

Request: POST /classify {"model": served_model, "input": [[ids], ...], "use_activation": false}
(the raw logit: vLLM's default applies a sigmoid to a one-label head). Reply: {"data": [{"index",
"probs": [logit], "num_classes": 1}, ...]}. A request that fails after every retry leaves its rows
None (skipped, counted); more than rm_http.max_failed_share of a call's rows is a UserError
(r1cli/generation/remote.py). At start-up, before any model loads, the server must answer, list
served_model in /v1/models, and score a probe with one label; the tokenizer is the dir the server
reports serving (its /v1/models `root`, found on a shared filesystem) or rm_http.tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from r1cli.config import RMServerConfig
from r1cli.errors import UserError
from r1cli.generation.remote import Client, Failure, base_url, check_reachable
from r1cli.rewards.common import fix_pad_token

_SERVED: dict[tuple, "ServedRM"] = {}  # (url, settings, flag) -> one client per server and role, checked once


def is_url(value) -> bool:
    return isinstance(value, str) and "://" in value


def served_rm(url: str, cfg: RMServerConfig | None, what: str) -> "ServedRM":
    """The ServedRM for `url`, its start-up checks run the first time it is asked for."""
    cfg = cfg or RMServerConfig()
    key = (url, repr(cfg), what)
    if key not in _SERVED:
        _SERVED[key] = ServedRM(url, cfg, what)
    return _SERVED[key]


def trim(ids: list[int], limit: int | None, pad_id: int | None) -> list[int]:
    """What vLLM must see to score the token transformers scores (see the module docstring).

    >>> trim([5, 6, 7, 1, 1], limit=None, pad_id=1)
    [5, 6, 7]
    >>> trim([5, 6, 7, 8], limit=3, pad_id=1)  # over-long: keep the end, as rm_scores does
    [6, 7, 8]
    """
    ids = ids[-limit:] if limit else list(ids)
    end = len(ids)
    while end > 1 and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]


class ServedRM:
    """One served reward model: `scores(ids)` -> the raw logit per text, None where no answer came."""

    def __init__(self, url: str, cfg: RMServerConfig, what: str):
        from transformers import AutoTokenizer

        self.url, self.cfg, self.what = url, cfg, what
        check_reachable(url, what, cfg.timeout_s)
        self.client = Client(base_url(url), cfg, what, max_failed_share=cfg.max_failed_share,
                             share_setting="rm_http.max_failed_share")
        card = self._model_card()
        self.max_len = card.get("max_model_len")
        self.root = cfg.tokenizer or card.get("root")
        if not self.root or not Path(self.root).is_dir():
            raise UserError(f"{what} {url} serves {card.get('root')!r}, which is not a directory on this machine: give "
                            "the reward model's tokenizer dir with --set rm_http.tokenizer=DIR")
        self.failed_rows = 0  # texts that got no score after every retry (None)
        self.tokenizer = AutoTokenizer.from_pretrained(self.root)
        fix_pad_token(self.tokenizer)
        self._probe()

    def _model_card(self) -> dict:
        reply = self.client.request("/v1/models")
        if isinstance(reply, Failure):
            raise UserError(f"{what_at(self)} does not list its models at /v1/models ({reply.detail or reply.reason}): "
                            "serve the reward model with vLLM (make serve-rm RM=DIR)")
        cards = [c for c in reply.get("data") or [] if isinstance(c, dict)]
        names = [str(c.get("id")) for c in cards]
        if self.cfg.served_model not in names:
            raise UserError(f"{what_at(self)} serves {', '.join(map(repr, names)) or 'no model'}, not "
                            f"{self.cfg.served_model!r}: set rm_http.served_model (e.g. --set "
                            f"rm_http.served_model={names[0] if names else 'rm'}) or restart the server with "
                            f"--served-model-name {self.cfg.served_model}")
        return cards[names.index(self.cfg.served_model)]

    def _probe(self) -> None:
        """One short text through /classify: the server is a pooling (classify) server with one label."""
        ids = self.tokenizer("Hello")["input_ids"] or [self.tokenizer.pad_token_id]
        reply = self.client.request("/classify", self._body([ids]))
        if isinstance(reply, Failure):
            raise UserError(f"{what_at(self)} does not score with /classify ({reply.detail or reply.reason}): serve a "
                            "reward model with vLLM's pooling runner (make serve-rm RM=DIR)")
        try:
            n = len(reply["data"][0]["probs"])
        except (KeyError, IndexError, TypeError):
            raise UserError(f"{what_at(self)} answered /classify without data[0].probs: is it vLLM's server?") from None
        if n != 1:
            raise UserError(f"{what_at(self)} serves a classifier with {n} labels; a reward model gives one score: "
                            "serve a num_labels=1 checkpoint (`r1 rm` makes one)")

    def _body(self, ids: list[list[int]]) -> dict:
        return {"model": self.cfg.served_model, "input": ids, "use_activation": False}

    def scores(self, ids: list[list[int]], batch_size: int) -> list[float | None]:
        """Raw scores of tokenized texts, batch_size texts per request; None where a request failed."""
        pad = self.tokenizer.pad_token_id
        ids = [trim(x, self.max_len, pad) for x in ids]
        chunks = [list(range(i, min(i + batch_size, len(ids)))) for i in range(0, len(ids), max(1, batch_size))]
        replies = self.client.post_many("/classify", [self._body([ids[i] for i in c]) for c in chunks],
                                        sizes=[len(c) for c in chunks])
        out: list[float | None] = [None] * len(ids)
        for chunk, reply in zip(chunks, replies):
            if isinstance(reply, Failure):
                continue
            for item in reply.get("data") or []:
                try:
                    out[chunk[item["index"]]] = float(item["probs"][0])
                except (KeyError, IndexError, TypeError, ValueError):
                    continue  # a malformed item: that row stays None, as a failed request's rows do
        self.failed_rows += sum(v is None for v in out)
        return out

    def summary(self, since: int = 0) -> dict:
        """The client's counts, the rows left without a score, latency p50/p95 of answers from `since` on."""
        return {**self.client.stats.summary(since), "failed_rows": self.failed_rows}


def what_at(rm: ServedRM) -> str:
    return f"{rm.what} {rm.url}"
