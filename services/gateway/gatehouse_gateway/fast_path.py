"""The MCP endpoint's hot path in front of FastAPI: no route matching, no middleware stack.

Every ``/gateways/{id}/mcp`` request goes straight to ``McpEndpoint.handle``; everything else
(admin API, metadata, health, oversized headers for their 431) goes to the FastAPI app.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gatehouse_contracts.http import HEADER_LIMIT

if TYPE_CHECKING:  # the endpoint uses JsonParts from here
    from .mcp_endpoint import McpEndpoint

MCP_PATH = re.compile(r"^/gateways/([^/]+)/mcp/?$")
JOIN_BELOW = 64 * 1024  # bytes: an answer this small is sent as one chunk


class McpFastPath:
    def __init__(self, app: Any, endpoint: McpEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (match := MCP_PATH.match(scope["path"])) is not None:
            if sum(len(k) + len(v) for k, v in scope["headers"]) <= HEADER_LIMIT:
                scope["path_params"] = {"gateway_id": match.group(1)}
                response = await self.endpoint.handle(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
