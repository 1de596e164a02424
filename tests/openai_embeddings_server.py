"""A small OpenAI-compatible ``/v1/embeddings`` server for tests, so the real ``openai`` client talks
over a real socket. Its embeddings are deterministic bags of hashed words (texts sharing words are
close), in float or base64 encoding, with ``dimensions`` honoured, and a switch to misbehave."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def bag_of_words(text: str, dimension: int) -> list[float]:
    vector = np.zeros(dimension, dtype=np.float32)
    for word in text.lower().split():
        digest = hashlib.sha256(word.strip(".,!?").encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % dimension] += 1.0 if digest[4] % 2 else -1.0
    if not vector.any():
        vector[0] = 1.0
    # Deliberately not normalised: the client must normalise.
    return [float(x) * 3.0 for x in vector]


class FakeEmbeddings:
    def __init__(self, port: int, *, dimension: int = 64) -> None:
        self.port = port
        self.dimension = dimension
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # "ok", "error" (HTTP 500), "short" (one embedding too few), "shuffled" (data out of order)
        self.mode = "ok"
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                if owner.mode == "error":
                    self._send(500, {"error": {"message": "model overloaded", "type": "server_error"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                dimension = int(body.get("dimensions") or owner.dimension)
                data = []
                for index, text in enumerate(texts):
                    vector = bag_of_words(text, dimension)
                    if body.get("encoding_format") == "base64":
                        embedding: Any = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
                    else:
                        embedding = vector
                    data.append({"object": "embedding", "index": index, "embedding": embedding})
                if owner.mode == "short":
                    data = data[:-1]
                if owner.mode == "shuffled":
                    data.reverse()
                tokens = sum(len(t.split()) for t in texts)
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
