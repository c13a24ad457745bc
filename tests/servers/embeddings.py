"""An embedding service for the tool-search tests (stdlib only): the common ``POST /v1/embeddings``
shape that Ollama, vLLM, text-embeddings-inference and LiteLLM speak, and nothing else.

No embedding model can be installed where Gatehouse is tested (docs/search.md), so this one embeds a
text as the counts of a few *concepts*, each a set of words that share no stem: "owe" and "unpaid
invoices" land on the same axis, which a ranking by words cannot know. That is what the tests need
from a model: tools found by meaning where no word matches.

POST /v1/embeddings  {"model": "...", "input": ["...", ...]} -> {"data": [{"index", "embedding"}], ...}
    401 without ``Authorization: Bearer <$EMBEDDINGS_API_KEY>`` (when it is set); 400 for a bad body.
GET /stats           {"requests": n, "texts": n}: what it was asked to embed so far.

Run: [EMBEDDINGS_API_KEY=...] python tests/servers/embeddings.py --port 9002
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONCEPTS = [
    {"owe", "owed", "unpaid", "invoice", "invoices", "debt", "money"},
    {"umbrella", "rain", "weather", "forecast", "sunny"},
    {"ticket", "issue", "issues", "bug"},
]
DIMENSIONS = 8  # more than the concepts: the rest stay 0, as a real model's unrelated directions
WORD = re.compile(r"[a-z]+")


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in WORD.findall(text.lower()):
        for axis, concept in enumerate(CONCEPTS):
            if word in concept:
                vector[axis] += 1.0
    return vector


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-embeddings/1.0"

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/stats":
            self._send(404, {"error": "not found"})
            return
        with self.server.lock:  # type: ignore[attr-defined]
            self._send(200, dict(self.server.stats))  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/embeddings":
            self._send(404, {"error": "not found"})
            return
        key = self.server.api_key  # type: ignore[attr-defined]
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self._send(401, {"error": "invalid api key"})
            return
        try:
            texts = json.loads(body)["input"]
            assert isinstance(texts, list) and all(isinstance(t, str) for t in texts)
        except (ValueError, KeyError, TypeError, AssertionError):
            self._send(400, {"error": 'expected {"model": "...", "input": ["...", ...]}'})
            return
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.stats["requests"] += 1  # type: ignore[attr-defined]
            self.server.stats["texts"] += len(texts)  # type: ignore[attr-defined]
        data = [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)]
        self._send(200, {"object": "list", "data": data, "model": "concepts"})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.api_key = os.environ.get("EMBEDDINGS_API_KEY", "")  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.stats = {"requests": 0, "texts": 0}  # type: ignore[attr-defined]
    print(f"embeddings on http://127.0.0.1:{args.port}/v1/embeddings", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
