"""A minimal OpenAI-compatible server on 127.0.0.1 serving a local transformers model.

Answers ``/v1/chat/completions`` (``logprobs``, ``top_logprobs``) and ``/v1/completions``
(``logprobs``) with one generated token, as vLLM does; a chat template error (a system turn
that the template rejects) is an HTTP 400, as in vLLM. It stops when its context exits or after
``lifetime_s`` seconds, whichever comes first.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from jinja2.exceptions import TemplateError
from transformers import AutoModelForCausalLM, AutoTokenizer


@contextmanager
def serve_model(
    model_dir: Path,
    lifetime_s: float = 300.0,
    received: list[dict[str, Any]] | None = None,
    chat_template: str | None = None,
) -> Iterator[str]:
    """Serve the model; yields the base URL (``http://127.0.0.1:PORT/v1``).

    ``received`` collects every request body, in arrival order; ``chat_template`` replaces the
    tokenizer's.
    """
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

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if received is not None:
                received.append(body)
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
            payload = json.dumps({"id": "cmpl-test", "model": body.get("model"), "choices": [choice]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

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
