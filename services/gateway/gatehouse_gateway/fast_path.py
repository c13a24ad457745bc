"""The MCP endpoint's hot path in front of FastAPI: no route matching, no middleware stack.

Every ``/gateways/{id}/mcp`` request goes straight to ``McpEndpoint.handle``; everything else
(admin API, metadata, health, oversized headers for their 431) goes to the FastAPI app.
"""

from __future__ import annotations

import re
from time import perf_counter

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gatehouse_contracts.http import HEADER_LIMIT

from .mcp_endpoint import McpEndpoint
from .telemetry import McpMetrics

MCP_PATH = re.compile(r"^/gateways/([^/]+)/mcp/?$")


class McpFastPath:
    def __init__(self, app: ASGIApp, endpoint: McpEndpoint, metrics: McpMetrics) -> None:
        self.app = app
        self.endpoint = endpoint
        self.observe = metrics.request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := MCP_PATH.match(scope["path"])) is not None:
            if sum(len(k) + len(v) for k, v in scope["headers"]) <= HEADER_LIMIT:
                started = perf_counter()
                gateway_id = match.group(1)
                scope["path_params"] = {"gateway_id": gateway_id}
                response = await self.endpoint.handle(Request(scope, receive))
                # until the answer is ready: a stream (subscriptions/listen, a consent wait) counts
                # its start, not how long the client keeps it open
                status = getattr(response, "status_code", 200)
                self.observe(scope, gateway_id, status, perf_counter() - started)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
