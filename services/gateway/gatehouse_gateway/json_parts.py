"""``JsonParts``: the MCP endpoint's JSON answer, written straight to ASGI without Starlette's copies."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

JOIN_BELOW = 64 * 1024  # bytes: an answer this small is sent as one chunk


class JsonParts(Response):
    """A JSON answer sent as one or more body chunks, so a cached multi-megabyte page is never
    copied; its few headers are encoded directly (Starlette's header machinery was a measurable
    share of a small tools/list, BENCHMARKS.md §6)."""

    media_type = "application/json"

    def __init__(self, parts: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        size = sum(map(len, parts))
        # each chunk is a write (a syscall, a TCP segment): join the small answers, copy no big one
        self.parts = [b"".join(parts)] if len(parts) > 1 and size <= JOIN_BELOW else parts
        self.raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(size).encode())]
        for key, value in (headers or {}).items():
            self.raw_headers.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})
