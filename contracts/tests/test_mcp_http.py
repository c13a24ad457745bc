"""The shared upstream HTTP client, against a real HTTP server on a socket: what it must not carry
from one call to the next, and how it reports what it gets back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gatehouse_contracts.mcp_client import McpHttp, McpSession, NotAnMcpServer


class Upstream:
    """A minimal MCP server that hands out a cookie, redirects on request, and records what it got."""

    def __init__(self) -> None:
        self.cookies: list[str] = []
        self.redirect = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.cookies.append(request.headers.get("Cookie", ""))
        if self.redirect:
            raise web.HTTPFound("/elsewhere")
        msg = json.loads(await request.read())
        if "id" not in msg:
            return web.Response(status=202)
        result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "t"}}
        if msg["method"] == "tools/call":
            result = {"content": [{"type": "text", "text": "ok"}]}
        response = web.json_response({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        response.set_cookie("upstream-session", "belongs-to-the-first-caller")
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    server = Upstream()
    app = web.Application()
    app.router.add_post("/mcp", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}/mcp"
    await runner.cleanup()


async def test_cookies_from_one_session_never_reach_another(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    http = McpHttp()
    try:
        first = McpSession(http, url, headers={"Authorization": "Bearer user-1"})
        await first.initialize()
        second = McpSession(http, url, headers={"Authorization": "Bearer user-2"})
        await second.initialize()
        assert (await second.call_tool("echo", {}))["content"][0]["text"] == "ok"
    finally:
        await http.close()
    assert server.cookies and all(c == "" for c in server.cookies), server.cookies


async def test_a_redirect_is_not_followed(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.redirect = True
    http = McpHttp()
    try:
        with pytest.raises(NotAnMcpServer, match="HTTP 302"):
            await McpSession(http, url).initialize()
    finally:
        await http.close()
    assert len(server.cookies) == 1  # one request: the redirect was not followed
