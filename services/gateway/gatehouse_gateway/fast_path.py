"""The MCP endpoint's hot path in front of FastAPI: no route matching, no middleware stack.

Every ``/gateways/{id}/mcp`` request goes straight to ``McpEndpoint.handle``; everything else
(admin API, metadata, health, oversized headers for their 431) goes to the FastAPI app.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gatehouse_contracts.http import HEADER_LIMIT

from .mcp_endpoint import McpEndpoint

MCP_PATH = re.compile(r"^/gateways/([^/]+)/mcp/?$")


class McpFastPath:
    def __init__(self, app: ASGIApp, endpoint: McpEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := MCP_PATH.match(scope["path"])) is not None:
            if sum(len(k) + len(v) for k, v in scope["headers"]) <= HEADER_LIMIT:
                scope["path_params"] = {"gateway_id": match.group(1)}
                response = await self.endpoint.handle(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
