"""A minimal OpenAI-compatible server on 127.0.0.1 serving a local transformers model.

Answers ``/v1/chat/completions`` (``logprobs``, ``top_logprobs``) and ``/v1/completions``
(``logprobs``) with one generated token, as vLLM does; a chat template error (a system turn
that the template rejects) is an HTTP 400, as in vLLM. It stops when its context exits or after
``lifetime_s`` seconds, whichever comes first.

:class:`Faults` makes it fail for real, the way busy or misconfigured servers do: HTTP 500, 429 with
``Retry-After``, a connection closed without an answer, an answer later than the client's timeout,
an HTML page, JSON without ``choices``, a choice without ``logprobs``, NaN or ``-Infinity`` log-probabilities.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from jinja2.exceptions import TemplateError
from transformers import AutoModelForCausalLM, AutoTokenizer

FAULT_KINDS = ("500", "429", "close", "stall", "html", "no_choices", "no_logprobs", "nan_logprobs", "-inf_logprobs")
HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Welcome to nginx!</h1></body></html>"


@dataclass
class Faults:
    """Which requests the server spoils, and how.

    Of the requests whose body contains ``match`` (every request when ``None``), the first of each
    ``every`` is spoiled (``every=3``: one in three; ``every=1``: all). ``delay_s`` delays every
    answer (so that a kill lands mid-run). ``log`` records ``(arrival time, spoiled kind or None)``.
    """

    kind: str | None = None
    every: int = 1
    match: str | None = None
    retry_after_s: int = 1
    stall_s: float = 3.0
    delay_s: float = 0.0
    log: list[tuple[float, str | None]] = field(default_factory=list)
    _seen: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        assert self.kind is None or self.kind in FAULT_KINDS, self.kind

    def spoil(self, raw_body: bytes) -> str | None:
        """The fault for this request, or ``None`` (counted and logged, thread-safe)."""
        with self._lock:
            chosen = None
            if self.kind is not None and (self.match is None or self.match.encode() in raw_body):
                chosen = self.kind if self._seen % self.every == 0 else None
                self._seen += 1
            self.log.append((time.monotonic(), chosen))
            return chosen


@contextmanager
def serve_model(
    model_dir: Path,
    lifetime_s: float = 300.0,
    received: list[dict[str, Any]] | None = None,
    chat_template: str | None = None,
    faults: Faults | None = None,
) -> Iterator[str]:
    """Serve the model; yields the base URL (``http://127.0.0.1:PORT/v1``).

    ``received`` collects every request body, in arrival order; ``chat_template`` replaces the
    tokenizer's; ``faults`` spoils requests (see :class:`Faults`).
    """
    faults = faults or Faults()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lock = threading.Lock()

    def next_token(text: str, k: int) -> tuple[str, float, list[tuple[str, float]]]:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with lock, torch.inference_mode():
            logprobs = torch.log_softmax(model(**ids).logits[0, -1].float(), dim=-1)
        values, indices = torch.topk(logprobs, k=max(1, k))
        top = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)]
        return top[0][0], top[0][1], top

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def send_bytes(self, status: int, payload: bytes, content_type: str, **headers: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                self.close_connection = True

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            if received is not None:
                received.append(body)
            fault = faults.spoil(raw)
            time.sleep(faults.delay_s)
            if fault == "500":
                self.send_bytes(500, b'{"error": "Internal Server Error"}', "application/json")
                return
            if fault == "429":
                self.send_bytes(429, b"Too Many Requests", "text/plain", Retry_After=str(faults.retry_after_s))
                return
            if fault == "close":  # no answer at all: the connection is closed
                self.close_connection = True
                return
            if fault == "stall":
                time.sleep(faults.stall_s)
            if fault == "html":
                self.send_bytes(200, HTML_PAGE, "text/html; charset=utf-8")
                return
            if fault == "no_choices":
                self.send_bytes(200, json.dumps({"id": "cmpl-test", "object": "error"}).encode(), "application/json")
                return
            if self.path == "/v1/chat/completions":
                try:
                    text = tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
                except TemplateError as error:
                    self.send_error(400, explain=str(error))
                    return
                token, logprob, top = next_token(text, int(body.get("top_logprobs") or 0))
                entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": token},
                    "finish_reason": "length",
                    "logprobs": {"content": [{"token": token, "logprob": logprob, "top_logprobs": entries}]},
                }
            elif self.path == "/v1/completions":
                token, logprob, top = next_token(body["prompt"], int(body.get("logprobs") or 0))
                merged: dict[str, float] = {}
                for t, lp in top:
                    merged[t] = max(lp, merged.get(t, lp))
                choice = {
                    "index": 0,
                    "text": token,
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": [token],
                        "token_logprobs": [logprob],
                        "top_logprobs": [merged],
                        "text_offset": [0],
                    },
                }
            else:
                self.send_error(404)
                return
            if fault == "no_logprobs":
                del choice["logprobs"]
            if fault in ("nan_logprobs", "-inf_logprobs"):
                value = float("nan") if fault == "nan_logprobs" else float("-inf")
                if self.path == "/v1/completions":
                    top = choice["logprobs"]["top_logprobs"][0]
                    choice["logprobs"]["top_logprobs"][0] = dict.fromkeys(top, value)
                else:
                    for entry in choice["logprobs"]["content"][0]["top_logprobs"]:
                        entry["logprob"] = value
            payload = json.dumps({"id": "cmpl-test", "model": body.get("model"), "choices": [choice]}).encode()
            self.send_bytes(200, payload, "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = threading.Timer(lifetime_s, server.shutdown)
    deadline.daemon = True
    deadline.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
