"""A stand-in for vLLM's pooling server (`vllm serve RM --runner pooling`, what `make serve-rm` starts),
on 127.0.0.1, for the served-RM tests and bench/served_rm.py.

    with FakeRM(rm_dir) as srv:            # srv.url == "http://127.0.0.1:PORT/v1"
        srv.fail_500 = 2                   # the next 2 /classify requests answer HTTP 500
        ...

It answers as vLLM documents its API: GET /v1/models -> {"data": [{"id", "root", "max_model_len"}]};
POST /classify {"model", "input": [[ids], ...], "use_activation"} -> {"data": [{"index", "label",
"probs", "num_classes"}]}, a 404 for a model name it does not serve. Scores come from the checkpoint
loaded here, pooled as vLLM pools a sequence classifier: the score head on the LAST token's hidden
state (transformers pools the last non-pad token instead; r1cli/rewards/served.py reconciles them).
With no rm_dir it lists its model and answers /classify with 500 (enough for start-up checks).

Faults, each for the next N /classify requests: fail_500 (HTTP 500), slow (sleep slow_s before
answering), kill (close the connection unanswered, shut the server down, and bring it back on the
same port after down_s seconds, as a restarted vLLM would come back); after the first `faults_from`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeRM:
    def __init__(self, rm_dir: Path | None = None, name: str = "rm", port: int = 0):
        self.rm_dir, self.name = rm_dir, name
        self.fail_500 = self.slow = self.kill = 0
        self.slow_s, self.down_s = 1.0, 1.0
        self.seen = 0  # /classify requests received (answered or not)
        self.faults_from = 0  # faults hit only requests after this many (1: spare the client's start-up probe)
        self.lock = threading.Lock()  # one forward pass at a time, and the fault counters
        self.model = None
        self.max_len = 512
        if rm_dir is not None:
            import torch
            from transformers import AutoModelForSequenceClassification

            self.model = AutoModelForSequenceClassification.from_pretrained(rm_dir, dtype=torch.float32).eval()
            self.max_len = self.model.config.max_position_embeddings
        self._serve(port)

    # --- the server's life --------------------------------------------------------------------

    def _serve(self, port: int) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _restart_later(self) -> None:
        def run():
            self.httpd.shutdown()
            self.httpd.server_close()
            time.sleep(self.down_s)
            self._serve(self.port)

        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- scoring, as vLLM pools a sequence classifier ------------------------------------------

    def score(self, ids: list[int]) -> float:
        import torch

        backbone = getattr(self.model, self.model.base_model_prefix)
        with torch.inference_mode():
            hidden = backbone(input_ids=torch.tensor([ids])).last_hidden_state[:, -1]
            return float(self.model.score(hidden)[0, 0])


def _handler(srv: FakeRM):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the tests' output is for failures
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, message: str) -> None:
            self._json(code, {"error": {"message": message, "type": "BadRequestError", "code": code}})

        def do_GET(self):
            if self.path.rstrip("/") != "/v1/models":
                return self._error(404, "Not Found")
            card = {"id": srv.name, "object": "model", "owned_by": "vllm", "max_model_len": srv.max_len,
                    "root": str(srv.rm_dir) if srv.rm_dir else srv.name}
            self._json(200, {"object": "list", "data": [card]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path != "/classify":
                return self._error(404, "Not Found")
            with srv.lock:
                srv.seen += 1
                armed = srv.seen > srv.faults_from
                fault = next((f for f in ("kill", "fail_500", "slow") if armed and getattr(srv, f) > 0), None)
                if fault:
                    setattr(srv, fault, getattr(srv, fault) - 1)
            if fault == "kill":
                self.close_connection = True  # no reply; the server goes down and comes back after down_s
                srv._restart_later()
                return
            if fault == "fail_500" or srv.model is None:
                return self._error(500, "internal server error")
            if fault == "slow":
                time.sleep(srv.slow_s)
            if body.get("model") != srv.name:
                return self._error(404, f"The model `{body.get('model')}` does not exist.")
            inputs = body.get("input")
            if not isinstance(inputs, list) or not all(isinstance(x, list) for x in inputs):
                return self._error(400, "this stand-in takes token ids only: input must be a list of lists of ints")
            data = []
            with srv.lock:
                for i, ids in enumerate(inputs):
                    logit = srv.score(ids)
                    prob = logit if body.get("use_activation") is False else 1 / (1 + math.exp(-logit))
                    data.append({"index": i, "label": "LABEL_0", "probs": [prob], "num_classes": 1})
            n = sum(len(x) for x in inputs)
            self._json(200, {"id": "classify-fake", "object": "list", "created": int(time.time()), "model": srv.name,
                             "data": data, "usage": {"prompt_tokens": n, "total_tokens": n, "completion_tokens": 0}})

    return Handler
