"""`r1 reject-sample`: filters, the judges (local and HTTP, with their failure modes), the stage
on the toy world (counts, general mode, `r1 sft` on its output), sharding + merge, kill/resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from r1cli.config import JudgeConfig, ReadabilityConfig, RejectSampleConfig
from r1cli.errors import UserError
from r1cli.generation import Completion
from r1cli.generation.judge import HTTPJudge, LocalJudge, judge_prompt, parse_verdict
from r1cli.rejection import sampling
from r1cli.rejection.filters import compile_patterns, is_trivial, normalize_reply, parse, same_reply, shape_reason

ROOT = Path(__file__).resolve().parents[1]


# --- filters ---------------------------------------------------------------------------------------


def reason(text, finish="stop", prefilled=False, **cfg):
    return shape_reason(parse(text, prefilled), finish, ReadabilityConfig(**cfg))


def test_shape_filters_name_the_first_failing_reason():
    good = "<think>\n3+4=7. 7*5=35.\n</think>\nThe answer is \\boxed{35}."
    assert reason(good) is None
    assert reason(good, finish="length") == "truncated"
    assert reason(good, finish="length", truncated=False) is None
    assert reason("The answer is \\boxed{35}.") == "format"                    # no CoT at all
    assert reason("junk <think>\nx\n</think>\nok") == "format"                  # text before the CoT
    assert reason("<think>\n3+4=7.\n</think>\n") == "missing_summary"
    assert reason("<think>\n3+4=7.\n</think>\n", min_summary_chars=None) == "format"
    assert reason("<think>\na <think> b\n</think>\nok") == "format"             # nested tag
    assert reason(good, min_reasoning_chars=100) == "too_short"
    assert reason(good, max_reasoning_chars=5) == "too_long"
    code = "<think>\nlet me code it\n```python\nprint(35)\n```\n</think>\n35"
    assert reason(code) == "code_in_cot" and reason(code, code_in_cot=False) is None
    long_ = "<think>\n" + "x" * 50 + "\n\nshort\n</think>\nok"
    assert reason(long_, max_paragraph_chars=40) == "long_paragraph"
    assert reason(long_, max_paragraph_chars=60) is None


def test_prefilled_think_is_put_back_in_the_row():
    p = parse("3+4=7.\n</think>\n\\boxed{7}", prefilled_think=True)
    assert p.text == "<think>\n3+4=7.\n</think>\n\\boxed{7}" and p.summary == "\\boxed{7}"
    assert parse("3+4=7.\n</think>\n\\boxed{7}").reasoning is None  # without the flag: no CoT


def test_trivial_prompts_and_reply_rule():
    pats = compile_patterns(RejectSampleConfig().trivial_patterns)
    assert is_trivial("Hello!", 32, pats) and is_trivial("你好！", 32, pats) and is_trivial("How are you?", 32, pats)
    assert not is_trivial("What is the opposite of \"hot\"?", 32, pats)
    assert not is_trivial("Hello! " + "please translate this long sentence", 32, pats)  # not short
    assert same_reply('"Cat" in Chinese is "猫".', '"cat" in chinese is "猫"')
    assert same_reply("“猫”的英文是“cat”。", '"猫"的英文是"Cat"')
    assert not same_reply("“猫”的英文是“dog”。", "“猫”的英文是“cat”。")
    assert not same_reply("", "") and normalize_reply("A, b!") == "ab"
    with pytest.raises(UserError, match="trivial_patterns"):
        compile_patterns(["(unclosed"])


# --- verdicts and the judges -------------------------------------------------------------------------


def test_parse_verdict():
    assert parse_verdict('{"analysis": "same", "correctness": true}').correct
    v = parse_verdict('thinking... {"analysis": "no", "correctness": false}')
    assert not v.correct and v.reason == "incorrect" and v.analysis == "no"
    assert parse_verdict('```json\n{"analysis": "ok", "correctness": "Correct"}\n```').correct
    assert parse_verdict('{"x": 1} then {"correctness": 1}').correct
    for garbage in ("", "yes it is correct", '{"analysis": "hm"}', '{"correctness": "maybe"}', "{not json"):
        assert parse_verdict(garbage).reason == "judge_unparseable", garbage


def test_judge_prompt_keeps_braces():
    text = judge_prompt(JudgeConfig(), "What is \\frac{1}{2}?", "{0.5}", "\\boxed{\\frac12}")
    assert "\\frac{1}{2}" in text and "{0.5}" in text and "\\boxed{\\frac12}" in text
    assert '{"analysis"' in text


class _Judge(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat-completions server. The response text picks the behaviour."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        server = self.server
        with server.lock:
            server.requests.append({"path": self.path, "model": body.get("model"),
                                    "auth": self.headers.get("Authorization"), "prompt": prompt})
            server.seen[prompt] = server.seen.get(prompt, 0) + 1
            count = server.seen[prompt]
        ref = re.search(r"Reference answer:\n(.*?)\n\nResponse:", prompt, re.S).group(1)
        resp = re.search(r"Response:\n(.*?)\n\nDoes the response", prompt, re.S).group(1)
        if "SLOW" in resp:
            time.sleep(1.0)
        if "FAIL500" in resp or ("FLAKY" in resp and count == 1):
            self.send_response(500)
            self.end_headers()
            return
        if "BADBODY" in resp:
            payload = b"<html>not json</html>"
        else:
            verdict = "I am not sure." if "GARBAGE" in resp else json.dumps(
                {"analysis": "compared", "correctness": ref.strip() in resp})
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and went away (SLOW)
            pass


@pytest.fixture(scope="module")
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    server.requests, server.seen, server.lock = [], {}, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_http_judge_verdicts(judge_server, monkeypatch):
    monkeypatch.setenv("R1_TEST_KEY", "sekret")
    judge = HTTPJudge(JudgeConfig(url=url_of(judge_server), served_model="my-judge", api_key_env="R1_TEST_KEY",
                                  concurrency=4))
    items = [("q1", "42", "the answer is 42"), ("q2", "7", "it is 8"), ("q3", "猫", "“猫”")]
    verdicts = judge.judge(items)
    assert [v.correct for v in verdicts] == [True, False, True]
    assert verdicts[1].reason == "incorrect" and verdicts[0].analysis == "compared"
    last = judge_server.requests[-1]
    assert last["path"] == "/v1/chat/completions" and last["model"] == "my-judge" and last["auth"] == "Bearer sekret"


def test_http_judge_failures_become_reasons(judge_server):
    cfg = JudgeConfig(url=url_of(judge_server), concurrency=4, retries=2, backoff_s=0.01, timeout_s=0.3)
    before = len(judge_server.requests)
    items = [("a", "1", "SLOW 1"), ("b", "1", "FAIL500 1"), ("c", "1", "FLAKY 1"), ("d", "1", "GARBAGE 1"),
             ("e", "1", "BADBODY 1")]
    got = [(v.correct, v.reason) for v in HTTPJudge(cfg).judge(items)]
    assert got == [(False, "judge_timeout"), (False, "judge_error"), (True, None), (False, "judge_unparseable"),
                   (False, "judge_error")]
    prompts = [r["prompt"] for r in judge_server.requests[before:]]
    assert sum("FAIL500" in p for p in prompts) == 3      # first try + 2 retries
    assert sum("FLAKY" in p for p in prompts) == 2        # a 500, then a good answer
    assert sum("BADBODY" in p for p in prompts) == 1      # a broken reply is not retried


def test_http_judge_refused_connection():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = JudgeConfig(url=f"http://127.0.0.1:{port}/v1", retries=1, backoff_s=0.01, timeout_s=1)
    assert HTTPJudge(cfg).judge([("q", "1", "1")])[0].reason == "judge_error"


class _Scripted:
    """A generator that answers every prompt with the same text (stands in for a judge model)."""

    tokenizer = None

    def __init__(self, text):
        self.text, self.prompts = text, []

    def generate(self, prompts, sampling, n=1, seed=0, progress=None):
        assert sampling.temperature == 0  # the judge decodes greedily
        self.prompts += prompts
        return [[Completion(self.text, [], 1, "stop")] * n for _ in prompts]


def test_local_judge_reads_its_model_output():
    gen = _Scripted('{"analysis": "matches", "correctness": true}')
    assert LocalJudge(gen, JudgeConfig()).judge([("q", "5", "\\boxed{5}")])[0].correct
    assert "\\boxed{5}" in gen.prompts[0][0]["content"]
    assert LocalJudge(_Scripted("5 is right"), JudgeConfig()).judge([("q", "5", "5")])[0].reason == "judge_unparseable"


# --- keep / dedupe ---------------------------------------------------------------------------------------


def test_keep_and_dedupe():
    def s(i, text, tokens):
        return sampling.Sample(0, i, parse(text), tokens, "stop")

    passed = [s(0, "<think>\na\n</think>\n1", 9), s(1, "<think>\nb\n</think>\n1", 5), s(2, "<think>\na\n</think>\n1", 9),
              s(3, "<think>\nc\n</think>\n1", 5)]
    reply = lambda x: x.parsed.text  # noqa: E731
    cfg = RejectSampleConfig()
    kept, dupes, not_kept = sampling.select(cfg, list(passed), reply)
    assert [k.index for k in kept] == [0, 1, 3] and dupes == 1 and not_kept == 0 and passed[2].reason == "duplicate"
    for p in passed:
        p.reason = None
    kept, _, not_kept = sampling.select(replace(cfg, keep="best"), list(passed), reply)
    assert [k.index for k in kept] == [1] and not_kept == 2          # shortest; tie -> lower index
    kept, _, _ = sampling.select(replace(cfg, keep="first", dedupe=False), list(passed), reply)
    assert [k.index for k in kept] == [0]


def test_chunk_seeds_depend_on_the_chunk_only():
    assert sampling.chunk_seed(0, 3) == sampling.chunk_seed(0, 3)
    assert len({sampling.chunk_seed(s, c) for s in range(3) for c in range(50)}) == 150


# --- the stage on a tiny trained "reasoner" ---------------------------------------------------------------
# A 2-layer model trained in seconds to answer these prompts in the R1 format, some right, some
# wrong, some in the wrong language, some in several ways (so samples depend on the seed).

REPLIES = {
    "What is (1+2)*3?": ["<think>\n1+2=3. 3*3=9.\n</think>\nThe answer is \\boxed{9}.",
                         "<think>\nFirst, 1+2=3. Then 3*3=9.\n</think>\nSo the result is \\boxed{9}.",
                         "<think>\nAdd: 1+2=3. Multiply: 3*3=9.\n</think>\nThe answer is \\boxed{9}."],
    "2加2乘5等于": ["<think>\n2加2等于4, 4乘5等于20\n</think>\n答案是\\boxed{20}"],
    "1加5乘4等于": ["<think>\nFirst, 1+5=6. Then 6*4=24.\n</think>\n答案是\\boxed{24}"],   # English CoT, Chinese prompt
    "Compute (3+4)*2.": ["<think>\n3+4=7. 7*2=15.\n</think>\nSo the result is \\boxed{15}."],   # wrong
    "Name a color.": ["<think>\nAny color will do.\n</think>\nRed.", "<think>\nAny color will do.\n</think>\nBlue."],
    "Say a fruit.": ["<think>\nA fruit, then.\n</think>\nBlue."],                                   # not the reference
    "Print 7.": ["<think>\nJust print it.\n</think>\n```python\nprint(7)\n```"],
}
# the same model is the local judge: with this (short) judge prompt it answers with a JSON verdict
JUDGE = "Q: {question}\nRef: {reference}\nResp: {response}\nVerdict:"
YES, NO = '{"analysis": "same", "correctness": true}', '{"analysis": "differs", "correctness": false}'
for _q, _ref, _resp, _v in [("Name a color.", "Red.", "Red.", YES), ("Name a color.", "Red.", "Blue.", NO),
                            ("Say a fruit.", "Apple.", "Blue.", NO)]:
    REPLIES[JUDGE.format(question=_q, reference=_ref, response=_resp)] = [_v]
ROWS = [
    {"prompt": "What is (1+2)*3?", "answer": "9", "domain": "math", "language": "en"},
    {"prompt": "2加2乘5等于", "answer": "20", "domain": "math", "language": "zh"},
    {"prompt": "1加5乘4等于", "answer": "24", "domain": "math", "language": "zh"},
    {"prompt": "Compute (3+4)*2.", "answer": "14", "domain": "math", "language": "en"},
    {"prompt": "Name a color.", "answer": "Red.", "domain": "general", "language": "en"},
    {"prompt": "Say a fruit.", "answer": "Apple.", "domain": "general", "language": "en"},
    {"prompt": "Print 7.", "answer": "", "domain": "code", "language": "en", "tests": [{"input": "", "output": "7"}]},
    {"prompt": "Hello!", "answer": "Hello! How can I help?", "domain": "general", "language": "en"},
]


def train_reasoner(out: Path) -> Path:
    import torch
    from tiny_lm import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_model(tok, seed=0, hidden=64, layers=2).train()
    with torch.no_grad():  # tiny_model sharpens its random logits 8x for greedy tests; training wants them plain
        model.lm_head.weight.div_(8)
    seqs = []
    for prompt, replies in REPLIES.items():
        head = tok(tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           tokenize=False), add_special_tokens=False)["input_ids"]
        for r in replies:
            seqs.append((head, head + tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]))
    width = max(len(s) for _, s in seqs)
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (head, s) in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
        labels[i, len(head):len(s)] = torch.tensor(s[len(head):])
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("reasoner")
    model = train_reasoner(d / "model")
    rows = [{"id": f"p{i:03d}", **ROWS[i % len(ROWS)], "kind": f"k{i % 3}"} for i in range(len(ROWS))]
    data = d / "prompts.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    many = d / "many.jsonl"  # for chunks, shards and resume: 40 prompts, no greeting, no code
    many.write_text("".join(json.dumps({"id": f"m{i:03d}", **ROWS[i % 6]}, ensure_ascii=False) + "\n" for i in range(40)))
    return {"model": model, "data": data, "many": many, "dir": d}


def config(*sets: str) -> RejectSampleConfig:
    from r1cli.recipe import resolve

    base = ["n=4", "chunk_size=4", "sampling.max_new_tokens=64", "sampling.batch_size=8", "verifier_general=rule"]
    return resolve(RejectSampleConfig, ROOT / "recipes/toy/reject_sample.yaml", base + list(sets), stage="reject-sample")


def run_stage(world, out, *sets, data=None, **kw):
    from r1cli.stages import reject_sample

    reject_sample.run(config(*sets), model=world["model"], data=data or world["data"], out=out, **kw)
    from datasets import load_from_disk

    return load_from_disk(str(out)), json.loads((out / "r1.json").read_text())


def rows_of(ds) -> list[dict]:
    return sorted(ds.to_list(), key=lambda r: r["id"])


def test_reasoning_mode_keeps_verified_readable_samples(world, tmp_path):
    from r1cli.templates import is_r1_format

    ds, m = run_stage(world, tmp_path / "rs")
    c = m["counts"]
    assert m["kind"] == "dataset" and m["stage"] == "reject-sample" and m["status"] == "finished"
    assert c["prompts"] == 8 and c["samples"] == 32 and c["accepted"] == len(ds) > 0
    # every sample is accounted for: rejected for one reason, or verified (then kept, a duplicate, or not kept)
    assert c["samples"] == c["passed"] + sum(v for k, v in c["rejected"].items() if k != "duplicate")
    assert c["passed"] == c["accepted"] + c["not_kept"] + c["rejected"].get("duplicate", 0)
    assert sum(int(k.split("/")[0]) * v for k, v in c["pass_rate_histogram"].items()) == c["passed"]
    assert sum(c["pass_rate_histogram"].values()) == 8
    for reason in ("mixed_language", "incorrect", "duplicate"):
        assert c["rejected"].get(reason, 0) > 0, (reason, c["rejected"])
    assert sum(v["rows"] for v in c["accepted_by_domain"].values()) == len(ds)
    assert m["metrics"]["samples_per_s"] > 0 and not (tmp_path / "rs" / "chunks").exists()

    by_source: dict = {}
    for r in ds:
        by_source.setdefault(r["source_id"], []).append(r)
        assert r["id"] == f"{r['source_id']}-{r['sample_index']}"
        assert [x["role"] for x in r["messages"]] == ["user", "assistant"] and is_r1_format(r["messages"][-1]["content"])
        assert r["kind"] in ("k0", "k1", "k2")  # an unknown input column is carried through
    assert {"p000", "p001", "p004", "p006"} <= set(by_source) and not {"p002", "p003", "p005"} & set(by_source)
    math = by_source["p000"]
    assert all(r["verifier"] == "accuracy" and r["reward_accuracy"] == 1.0 and r["domain"] == "math" for r in math)
    assert len({r["messages"][-1]["content"] for r in math}) == len(math)  # deduped
    assert all(r["verifier"] == "rule" and r["messages"][-1]["content"].endswith("Red.") for r in by_source["p004"])
    assert by_source["p006"][0]["verifier"] == "code" and by_source["p006"][0]["reward_code"] == 1.0
    assert by_source["p001"][0]["reward_language"] == 1.0

    best, m_best = run_stage(world, tmp_path / "best", "keep=best")
    assert all(len([r for r in best if r["source_id"] == s]) == 1 for s in by_source)
    assert m_best["counts"]["not_kept"] == len(ds) - len(best)
    shortest = min(math, key=lambda r: (r["num_tokens"], r["sample_index"]))
    assert [r["messages"][-1]["content"] for r in best if r["source_id"] == "p000"] == [shortest["messages"][-1]["content"]]


def test_general_mode_writes_cots_for_known_replies(world, tmp_path):
    ds, m = run_stage(world, tmp_path / "general", "mode=general", "general_check=summary")
    c = m["counts"]
    rows = {r["source_id"]: r for r in ds}
    hello = rows["p007"]  # trivial: the reference reply, no CoT, nothing sampled
    assert hello["messages"][-1]["content"] == "Hello! How can I help?" and hello["verifier"] == "reference"
    assert c["trivial"] == 1 and c["samples"] == 7 * 4
    color = [r for r in ds if r["source_id"] == "p004"]
    assert color and all(r["messages"][-1]["content"] == "<think>\nAny color will do.\n</think>\nRed." for r in color)
    assert "p005" not in rows and c["rejected"]["inconsistent"] >= 4  # "Blue." is not "Apple."


def test_general_mode_can_keep_every_readable_cot(world, tmp_path):
    """general_check=filters (the paper's V3 path): a CoT that passes the readability filters goes
    before the reference reply, whatever the model replied after it; the filters still drop the rest."""
    ds, m = run_stage(world, tmp_path / "filters", "mode=general", "general_check=filters", "keep=first")
    c, rows = m["counts"], {r["source_id"]: r for r in ds}
    fruit = rows["p005"]  # the model says "Blue.", the row keeps the reference
    assert fruit["messages"][-1]["content"] == "<think>\nA fruit, then.\n</think>\nApple." and fruit["verifier"] == "filters"
    assert "p002" not in rows and c["rejected"]["mixed_language"] == 4  # an English CoT for a Chinese prompt
    assert "p006" not in rows and c["rejected"]["no_reference"] == 4  # no reply to put after the CoT
    assert "inconsistent" not in c["rejected"] and rows["p007"]["verifier"] == "reference"
    assert len(ds) == len(rows) == 6 and "reward_rule" not in ds.column_names  # keep=first: one row per prompt


def test_http_judge_in_the_stage(world, tmp_path, judge_server):
    ds, m = run_stage(world, tmp_path / "judged", "verifier_general=judge", f"judge.url={url_of(judge_server)}")
    general = [r for r in ds if r["domain"] == "general"]
    assert general and all(r["verifier"] == "judge" and r["reward_judge"] == 1.0 for r in general)
    assert {r["source_id"] for r in general} == {"p004"} and m["counts"]["rejected"]["incorrect"] > 0


def test_local_judge_in_the_stage(world, tmp_path):
    ds, m = run_stage(world, tmp_path / "judged", "verifier_general=judge", f"judge.model_dir={world['model']}",
                      f"judge.prompt={json.dumps(JUDGE)}", "judge.max_new_tokens=64")
    general = [r for r in ds if r["domain"] == "general"]
    assert general and all(r["verifier"] == "judge" and r["reward_judge"] == 1.0 for r in general)
    assert all(r["messages"][-1]["content"].endswith("Red.") for r in general)
    assert m["counts"]["rejected"]["incorrect"] > 0
    # a judge that writes no JSON verdict: its samples are rejected under their own reason
    _, m = run_stage(world, tmp_path / "garbled", "verifier_general=judge", f"judge.model_dir={world['model']}",
                     "judge.max_new_tokens=16")
    assert m["counts"]["rejected"].get("judge_unparseable", 0) > 0


def test_sharded_runs_merge_into_the_unsharded_one(world, tmp_path):
    from r1cli.stages import data as commands

    whole, _ = run_stage(world, tmp_path / "whole", data=world["many"])
    for i in range(2):
        shard, m = run_stage(world, tmp_path / f"shard{i}", "num_shards=2", f"shard_index={i}", data=world["many"])
        assert m["counts"]["prompts"] == 20 and m["counts"]["shard"] == f"{i}/2"
    commands.merge([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    from datasets import load_from_disk

    merged = load_from_disk(str(tmp_path / "merged"))
    assert len(whole) > 10 and rows_of(merged) == rows_of(whole)
    # another seed draws other samples: the equality above is not luck
    other, _ = run_stage(world, tmp_path / "seed1", "seed=1", data=world["many"])
    assert rows_of(other) != rows_of(whole)


def test_kill_and_resume_gives_the_uninterrupted_rows(world, tmp_path):
    whole, _ = run_stage(world, tmp_path / "whole", data=world["many"])
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1cli", "reject-sample", "--model", str(world["model"]), "--data", str(world["many"]),
           "--out", str(out), "--recipe", str(ROOT / "recipes/toy/reject_sample.yaml"),
           *[a for s in ("n=4", "chunk_size=4", "sampling.max_new_tokens=64", "sampling.batch_size=8",
                         "verifier_general=rule") for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    chunks = Path(f"{out}.partial") / "chunks"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(chunks.glob("*.arrow")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = len(list(chunks.glob("*.arrow")))
    assert 1 <= done < 10 and not out.exists()

    refused = subprocess.run(cmd, env=env, capture_output=True, text=True)  # no --resume: refused, kept
    assert refused.returncode == 2 and "--resume" in refused.stderr and chunks.exists()
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    from datasets import load_from_disk

    m = json.loads((out / "r1.json").read_text())
    assert m["counts"]["prompts"] == 40 and m["counts"]["chunks"] == 10
    assert rows_of(load_from_disk(str(out))) == rows_of(whole)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["chunk"] for x in lines) == list(range(10))  # each chunk sampled once


def test_a_crash_mid_run_resumes_in_process(world, tmp_path, monkeypatch):

    whole, _ = run_stage(world, tmp_path / "whole", data=world["many"])
    real, calls = sampling.process_chunk, []

    def crash_on_third(ctx, table, start, seed):
        calls.append(start)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(ctx, table, start, seed)

    monkeypatch.setattr(sampling, "process_chunk", crash_on_third)
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError):
        run_stage(world, out, data=world["many"])
    assert len(list((tmp_path / "crashed.partial" / "chunks").glob("*.arrow"))) == 2
    monkeypatch.setattr(sampling, "process_chunk", real)
    with pytest.raises(UserError, match="n=4, not 2|was started with"):  # a different config is not a resume
        run_stage(world, out, "n=2", data=world["many"], resume=True)
    ds, m = run_stage(world, out, data=world["many"], resume=True)
    assert rows_of(ds) == rows_of(whole) and m["counts"]["samples"] == 40 * 4


def test_sft_accepts_the_output(world, tmp_path, toy_base):
    from r1cli.config import SFTStageConfig
    from r1cli.recipe import resolve_stage
    from r1cli.stages import sft

    run_stage(world, tmp_path / "rs")
    run_stage(world, tmp_path / "rs_general", "mode=general")
    res = resolve_stage(SFTStageConfig, None, ["trl.max_steps=2", "trl.per_device_train_batch_size=2", "trl.use_cpu=true",
                                               "trl.report_to=[]", 'trl.save_strategy="no"'], stage="sft",
                        out=tmp_path / "sft", trainer=True)
    out = sft.run(res, stage="sft", model=toy_base, data=[tmp_path / "rs", tmp_path / "rs_general"], out=tmp_path / "sft")
    m = json.loads((Path(out) / "r1.json").read_text())
    assert m["status"] == "finished" and m["counts"]["steps"] == 2 and m["counts"]["rows"] > 0


# --- bad input: exit 2, one line, no output dir ------------------------------------------------------------


@pytest.mark.parametrize("case", ["two_judges", "no_judge", "shard_index", "no_answer", "few_shot", "judge_url",
                                  "verifier", "judge_dir", "reward_option"])
def test_bad_inputs_exit_2_without_output(case, world, tmp_path, capsys):
    from r1cli.cli import main

    data = world["data"]
    extra: list[str] = []
    if case == "two_judges":
        extra = ["--judge", str(world["model"]), "--judge-url", "http://127.0.0.1:9/v1"]
    elif case == "no_judge":
        extra = ["--set", "verifier_general=judge"]
    elif case == "shard_index":
        extra = ["--num-shards", "2", "--shard-index", "2"]
    elif case == "no_answer":
        data = tmp_path / "noanswer.jsonl"
        data.write_text(json.dumps({"prompt": "What is 1+1?", "domain": "math"}) + "\n")
    elif case == "few_shot":
        shots = tmp_path / "shots.jsonl"
        shots.write_text(json.dumps({"messages": [{"role": "user", "content": "1+1?"},
                                                  {"role": "assistant", "content": "2"}]}) + "\n")
        extra = ["--few-shot", str(shots)]
    elif case == "judge_url":
        extra = ["--set", "verifier_general=judge", "--judge-url", "localhost:8000"]
    elif case == "verifier":
        extra = ["--set", "verifiers={math: regex}"]
    elif case == "judge_dir":
        extra = ["--set", "verifier_general=judge", "--judge", str(tmp_path / "nope")]
    elif case == "reward_option":
        extra = ["--set", "reward_options={timout: 3}"]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["reject-sample", "--model", str(world["model"]), "--data", str(data), "--out", str(out),
              "--recipe", str(ROOT / "recipes/toy/reject_sample.yaml"), *extra])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists() and not Path(f"{out}.partial").exists()
    expect = {"two_judges": "give one judge", "no_judge": "--judge-url", "shard_index": "--shard-index",
              "no_answer": "`answer`", "few_shot": "R1-format", "judge_url": "http://", "verifier": "regex",
              "judge_dir": "--judge", "reward_option": "timout"}[case]
    assert expect in err, err


def test_model_prompts_few_shot_and_general_template():
    from tiny_lm import tiny_tokenizer

    class Gen:
        tokenizer = tiny_tokenizer()

    shots = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"<think>\nr{i}\n</think>\na{i}"}]
             for i in range(5)]
    ctx = sampling.Context(cfg=config("few_shot=2"), generator=Gen(), judge=None, prefilled=False, examples=shots)
    row = {"prompt": [{"role": "user", "content": "What is {x}?"}], "answer": "\\boxed{3}"}
    messages, pre = sampling.model_prompt(ctx, row, 7)
    assert not pre and len(messages) == 5 and messages[-1] == row["prompt"][0]
    assert [m["role"] for m in messages[:4]] == ["user", "assistant"] * 2
    assert sampling.model_prompt(ctx, row, 7)[0] == messages                # the same examples for the same prompt
    assert any(sampling.model_prompt(ctx, row, i)[0] != messages for i in range(8))  # others elsewhere
    ctx.cfg, ctx.examples = config("mode=general", "general_template='{prompt} | reply: {reply}'"), []
    text, pre = sampling.model_prompt(ctx, row, 0)
    assert pre and text == "<|user|>What is {x}? | reply: \\boxed{3}\n<|assistant|><think>\n"  # starts the CoT


def test_few_shot_collection_runs_the_stage(world, tmp_path):
    shots = tmp_path / "shots.jsonl"
    shots.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p},
                                                      {"role": "assistant", "content": r[0]}]}, ensure_ascii=False) + "\n"
                             for p, r in list(REPLIES.items())[:3]))
    ds, m = run_stage(world, tmp_path / "fs", "few_shot=1", few_shot=shots)
    assert str(shots) in [i["path"] for i in m["inputs"]] and m["counts"]["samples"] == 32
    assert all(len(r["messages"]) == 2 for r in ds)  # the examples are not part of the SFT rows


def test_nothing_accepted_still_writes_a_loadable_dataset(world, tmp_path):
    ds, m = run_stage(world, tmp_path / "none", "filters.max_reasoning_chars=1", "mode=reasoning")
    assert len(ds) == 0 and m["counts"]["accepted"] == 0 and m["counts"]["rejected"]["too_long"] > 0
    assert {"id", "messages", "source_id", "sample_index", "verifier", "kind"} <= set(ds.column_names)


def test_prompts_that_leave_no_room_are_refused_or_dropped(world, tmp_path):
    data = tmp_path / "long.jsonl"
    rows = [{"id": "ok", **ROWS[0]},
            {"id": "huge", "prompt": "What is " + "1+" * 300 + "1?", "answer": "301", "domain": "math", "language": "en"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"1 of 2 prompts .* \(ids huge\)"):
        run_stage(world, tmp_path / "rs", data=data)
    assert not (tmp_path / "rs").exists() and not (tmp_path / "rs.partial").exists()
    ds, m = run_stage(world, tmp_path / "rs", "drop_long_prompts=true", data=data)
    assert m["counts"]["dropped_long_prompts"] == 1 and m["counts"]["prompts"] == 1
    assert set(ds["source_id"]) <= {"ok"}
