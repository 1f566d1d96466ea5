"""The HTTP judge against a server that misbehaves at the byte level (tests/test_reject_sample.py
covers slow answers, 500s, garbage verdicts, non-JSON bodies and a refused port).

Here: a reply cut off mid-body, a hang-up before any reply, bytes that are not HTTP, a body
dripped one byte at a time (each read within the socket timeout, the whole far beyond it),
headers and then silence, and a cut-off reply that succeeds on retry. Each sample must end
accepted or rejected with a reason, after a bounded number of attempts, and the call must
return (a generous join guards against a hang; nothing is timed).
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
import time

import pytest

from r1cli.config import JudgeConfig
from r1cli.generation.judge import HTTPJudge

RETRIES = 2


def _reply(correct: bool) -> bytes:
    verdict = json.dumps({"analysis": "compared", "correctness": correct})
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()


class _Handler(socketserver.StreamRequestHandler):
    """Reads one HTTP request, then does what the marker in the judged response says."""

    def handle(self):
        headers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            if b":" in line:
                k, v = line.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = json.loads(self.rfile.read(int(headers.get("content-length", 0))))
        prompt = body["messages"][0]["content"]
        marker = re.search(r"Response:\n(\w+)", prompt).group(1)
        server = self.server
        with server.lock:
            server.seen[marker] = server.seen.get(marker, 0) + 1
            count = server.seen[marker]
        good = _reply(True)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        w = self.wfile
        try:
            if marker == "CUT" or (marker == "FLAKYCUT" and count == 1):
                w.write(head % len(good) + good[:20])  # then the connection closes
            elif marker == "HANGUP":
                pass
            elif marker == "NOTHTTP":
                w.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            elif marker == "DRIP":
                padded = good + b" " * 400  # JSON allows trailing spaces: a valid reply, if it ever ended
                w.write(head % len(padded))
                for byte in padded:
                    w.write(bytes([byte]))
                    w.flush()
                    time.sleep(0.05)
            elif marker == "STALL":
                w.write(head % len(good))
                w.flush()
                time.sleep(2)
            else:  # GOOD, and FLAKYCUT's second try
                w.write(head % len(good) + good)
            w.flush()
        except (BrokenPipeError, ConnectionResetError):  # the judge gave up on us: as it should
            pass


@pytest.fixture(scope="module")
def server():
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.seen, srv.lock = {}, threading.Lock()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def judge_all(srv, markers: list[str]) -> list:
    cfg = JudgeConfig(url=f"http://127.0.0.1:{srv.server_address[1]}/v1", concurrency=len(markers),
                      retries=RETRIES, backoff_s=0.01, timeout_s=0.5)
    got: list = []
    worker = threading.Thread(target=lambda: got.extend(HTTPJudge(cfg).judge([(m, "x", m) for m in markers])),
                              daemon=True)
    worker.start()
    worker.join(120)  # a hang guard, not a timing: the calls below take a few seconds at most
    assert not worker.is_alive(), "the judge hung"
    return got


def test_byte_level_failures_end_as_rejections_with_reasons(server):
    markers = ["GOOD", "CUT", "HANGUP", "NOTHTTP", "DRIP", "STALL", "FLAKYCUT"]
    got = {m: (v.correct, v.reason) for m, v in zip(markers, judge_all(server, markers))}
    assert got == {"GOOD": (True, None), "CUT": (False, "judge_error"), "HANGUP": (False, "judge_error"),
                   "NOTHTTP": (False, "judge_error"), "DRIP": (False, "judge_timeout"),
                   "STALL": (False, "judge_timeout"), "FLAKYCUT": (True, None)}
    # transient failures are retried, and only `retries` times
    for m in ("CUT", "HANGUP", "NOTHTTP", "DRIP", "STALL"):
        assert server.seen[m] == RETRIES + 1, (m, server.seen[m])
    assert server.seen["FLAKYCUT"] == 2 and server.seen["GOOD"] == 1
