"""Reward models served over HTTP (r1cli/rewards/served.py, through r1cli/generation/remote.py) against a
stand-in for vLLM's pooling server (tests/fake_rm_server.py): served scores equal in-process scores on
the same checkpoint; faults (HTTP 500, slow answers, a server killed and restarted) are retried, and
what still fails is None and counted, or one UserError line past max_failed_share; a wrong model name
stops `r1 align` before training; an `r1 align` run against served RMs finishes and logs its counts.

Nothing here is timed: slow answers and restarts only need the retries to outlast them.
"""

from __future__ import annotations

import json

import pytest

from fake_rm_server import FakeRM
from r1cli.config import RMServerConfig
from r1cli.errors import UserError
from r1cli.rewards.preference import harmlessness, helpfulness
from r1cli.rewards.served import served_rm
from test_align import CALM, DARK, FAST_ALIGN, FAST_RM, PROMPT, r1, save_tiny_rm

LONG = "<think>\n" + "step by step, " * 60 + "\n</think>\nDone."  # past the tiny RM's 512 positions
COMPLETIONS = [CALM, DARK, "No.", "<think>\nnever closed", LONG, [{"role": "assistant", "content": CALM}]]
PROMPTS = [PROMPT, PROMPT, "Plain prompt?", PROMPT, PROMPT, PROMPT]
RETRIES = 3
# fast retries: the faults below last a fraction of what retries * backoff add up to (0.1+0.2+0.4 s + timeouts)
FAST = dict(retries=RETRIES, backoff_s=0.1, timeout_s=0.5, concurrency=2)


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    """Two tiny RMs: one with a chat template and its own pad token, one whose pad is eos and which has no
    template (encode appends eos: the trailing-pad case where transformers and vLLM pool different tokens)."""
    d = tmp_path_factory.mktemp("served")
    chat = save_tiny_rm(d / "chat", seed=1)
    eos = save_tiny_rm(d / "eos", seed=2, pad=False)
    tc = json.loads((eos / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (eos / "tokenizer_config.json").write_text(json.dumps(tc))
    (eos / "chat_template.jinja").unlink(missing_ok=True)
    return chat, eos


@pytest.fixture(autouse=True)
def fresh_clients():
    """Served RMs are cached per URL for a run; a test's server is new (a port may come round again)."""
    from r1cli.rewards import served

    served._SERVED.clear()
    yield
    served._SERVED.clear()


def settings(**kw) -> RMServerConfig:
    return RMServerConfig(**{**FAST, **kw})


@pytest.mark.parametrize("which", [0, 1], ids=["chat-template", "pad-is-eos"])
def test_served_scores_equal_in_process(rms, which):
    rm = rms[which]
    with FakeRM(rm) as srv:
        for factory, key in ((helpfulness, "helpful_rm"), (harmlessness, "harmless_rm")):
            local = factory(**{key: str(rm)}, rm_normalization="none", rm_batch_size=4)(PROMPTS, COMPLETIONS)
            served_fn = factory(**{key: srv.url}, rm_normalization="none", rm_batch_size=4, rm_http=settings())
            served = served_fn(PROMPTS, COMPLETIONS)
            assert served == pytest.approx(local, abs=1e-4)
            assert served_fn.served.summary()["failed_rows"] == 0
        # routing is the in-process one: reasoning rows get None, and are not sent
        sent = srv.seen
        out = helpfulness(helpful_rm=srv.url, rm_http=settings())([PROMPT] * 2, [CALM] * 2, domain=["math", "general"])
        assert out[0] is None and isinstance(out[1], float) and srv.seen == sent + 1


def test_http_500_is_retried_then_none_and_counted(rms):
    with FakeRM(rms[0]) as srv:
        fn = helpfulness(helpful_rm=srv.url, rm_normalization="none", rm_batch_size=1,
                         rm_http=settings(concurrency=1, max_failed_share=0.5))
        stats_before = fn.served.summary()
        srv.fail_500 = 1  # one 500, then an answer: retried, nothing lost
        assert all(isinstance(v, float) for v in fn([PROMPT] * 2, [CALM, DARK]))
        srv.fail_500 = RETRIES + 1  # every attempt of the first request fails: its row is None, the rest scored
        logged = {}
        out = fn([PROMPT] * 4, [CALM, DARK, "No.", "Yes."], log_metric=logged.__setitem__)
        assert out[0] is None and all(isinstance(v, float) for v in out[1:])
        s = fn.served.summary()
        assert s["failures"] - stats_before["failures"] == 1 and s["failed_rows"] == 1
        assert s["retries"] - stats_before["retries"] == 1 + RETRIES
        assert logged["rm_http/helpfulness/failed_rows"] == 1 and logged["rm_http/helpfulness/retries"] == s["retries"]
        assert logged["rm/helpfulness/raw_mean"] == pytest.approx(sum(out[1:]) / 3)  # over the scored rows only
        # more than max_failed_share of a call's rows without a score: one line naming the setting
        srv.fail_500 = 2 * (RETRIES + 1)
        with pytest.raises(UserError, match=r"2 of 3 rows got no answer.*rm_http.max_failed_share") as e:
            fn([PROMPT] * 3, [CALM, DARK, "No."])
        assert "\n" not in str(e.value)


def test_slow_answers_time_out_and_are_retried(rms):
    with FakeRM(rms[0]) as srv:
        fn = harmlessness(harmless_rm=srv.url, rm_normalization="none", rm_batch_size=2, rm_http=settings(concurrency=1))
        srv.slow, srv.slow_s = 2, 2.0  # past timeout_s (0.5): the first two requests time out
        before = fn.served.summary()
        out = fn([PROMPT] * 4, [CALM, DARK, "No.", "Yes."])
        assert all(isinstance(v, float) for v in out)
        s = fn.served.summary()
        assert s["retries"] - before["retries"] == 2 and s["failures"] == 0


def test_server_killed_and_restarted(rms):
    with FakeRM(rms[0]) as srv:
        fn = helpfulness(helpful_rm=srv.url, rm_normalization="none", rm_batch_size=1,
                         rm_http=settings(retries=6, backoff_s=0.2))
        srv.kill, srv.down_s = 1, 1.0  # the first request is dropped; the server is down for a second
        out = fn([PROMPT] * 3, [CALM, DARK, "No."])
        assert all(isinstance(v, float) for v in out) and fn.served.summary()["retries"] >= 1


def test_start_up_checks(rms, tmp_path):
    with FakeRM(rms[0], name="helpful") as srv:
        with pytest.raises(UserError, match=r"serves 'helpful', not 'rm': set rm_http.served_model"):
            served_rm(srv.url, settings(), "--helpful-rm")
        # the tokenizer: the dir the server reports, or rm_http.tokenizer when that dir is elsewhere
        srv.rm_dir = tmp_path / "elsewhere"
        with pytest.raises(UserError, match="rm_http.tokenizer=DIR"):
            served_rm(srv.url, settings(served_model="helpful"), "--helpful-rm")
        assert served_rm(srv.url, settings(served_model="helpful", tokenizer=str(rms[0])), "--helpful-rm").tokenizer
    with FakeRM(None) as srv:  # lists its model, but does not classify (a generative server, say)
        with pytest.raises(UserError, match="does not score with /classify"):
            served_rm(srv.url, settings(retries=0, tokenizer=str(rms[0])), "--harmless-rm")


# --- r1 align and r1 score against served RMs -----------------------------------------------------------


@pytest.fixture(scope="module")
def toy_rm(toy_data, toy_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("served_rm") / "rm"
    r1("rm", "--model", toy_base, "--data", toy_data / "helpful_pairs", "--out", out, *FAST_RM)
    return out


def test_align_against_served_rms_with_a_restart(toy_data, toy_base, toy_rm, tmp_path):
    with FakeRM(toy_rm) as helpful, FakeRM(toy_rm) as harmless:
        # after the start-up probe, the first helpfulness request: the server dies, and comes back a second later
        helpful.faults_from, helpful.kill, helpful.down_s = 1, 1, 1.0
        harmless.faults_from, harmless.fail_500 = 1, 1
        out = tmp_path / "align"
        r1("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general",
           "--helpful-rm", helpful.url, "--harmless-rm", harmless.url, "--out", out, *FAST_ALIGN,
           "--set", "rm_http.retries=6", "--set", "rm_http.backoff_s=0.2", "--set", "rm_http.timeout_s=30")
    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["steps"] == 2
    served = m["counts"]["rm_http"]
    assert served["helpfulness"]["retries"] >= 1 and served["harmlessness"]["retries"] >= 1
    assert served["helpfulness"]["failed_rows"] == served["harmlessness"]["failed_rows"] == 0
    assert served["helpfulness"]["latency_p95_s"] >= served["helpfulness"]["latency_p50_s"] > 0
    assert len(m["inputs"]) == 3 and not any("://" in i["path"] for i in m["inputs"])  # model and the two --data
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logs if "reward" in r]
    for key in ("requests", "retries", "failures", "failed_rows", "latency_p50_s", "latency_p95_s"):
        assert f"rm_http/helpfulness/{key}" in train[-1] and f"rm_http/harmlessness/{key}" in train[-1]
    assert "rewards/helpfulness/general/mean" in train[1]


def test_align_wrong_model_name_stops_before_training(toy_data, toy_base, toy_rm, tmp_path, capsys):
    with FakeRM(toy_rm, name="helpful") as srv:
        with pytest.raises(SystemExit) as e:
            r1("align", "--model", toy_base, "--data", toy_data / "rl", "--data", toy_data / "general",
               "--helpful-rm", srv.url, "--harmless-rm", srv.url, "--out", tmp_path / "out", *FAST_ALIGN)
        assert srv.seen == 0  # stopped at the model list, before any scoring
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "not 'rm'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_score_against_a_served_rm(toy_rm, tmp_path):
    rows = tmp_path / "completions.jsonl"
    lines = [{"prompt": PROMPT, "completion": c, "domain": d} for c, d in ((CALM, "general"), (DARK, "general"),
                                                                          ("<think>\n1+1=2.\n</think>\n\\boxed{2}", "math"))]
    rows.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with FakeRM(toy_rm) as srv:
        r1("score", rows, "--rewards", "helpfulness", "--helpful-rm", srv.url, "--out", tmp_path / "served")
    r1("score", rows, "--rewards", "helpfulness", "--helpful-rm", toy_rm, "--out", tmp_path / "local")
    from datasets import load_from_disk

    served, local = (load_from_disk(str(tmp_path / d))["reward_helpfulness"] for d in ("served", "local"))
    assert served[2] is None and served[:2] == pytest.approx(local[:2], abs=1e-5)
    counts = json.loads((tmp_path / "served" / "r1.json").read_text())["counts"]
    assert counts["rm_http"]["helpfulness"]["failures"] == 0 and counts["rm_http"]["helpfulness"]["requests"] >= 2
