"""The shared upstream HTTP client, against a real HTTP server on a socket: what it must not carry
from one call to the next, and how it reports what it gets back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gatehouse_contracts.mcp_client import (
    McpHttp,
    McpSession,
    NotAnMcpServer,
    UpstreamRpcError,
    UpstreamTooLarge,
)


class Upstream:
    """A minimal MCP server that hands out a cookie, redirects on request, and records what it got."""

    def __init__(self) -> None:
        self.cookies: list[str] = []
        self.redirect = False
        self.call_answer: bytes | None = None  # the tools/call answer's body, %d = the request id
        self.chunked = False  # send it without a Content-Length

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.cookies.append(request.headers.get("Cookie", ""))
        if self.redirect:
            raise web.HTTPFound("/elsewhere")
        msg = json.loads(await request.read())
        if "id" not in msg:
            return web.Response(status=202)
        result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "t"}}
        if msg["method"] == "tools/call" and self.call_answer is not None:
            answer = self.call_answer % msg["id"] if b"%d" in self.call_answer else self.call_answer
            if not self.chunked:
                return web.Response(body=answer, content_type="application/json")
            stream = web.StreamResponse(headers={"Content-Type": "application/json"})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            for i in range(0, len(answer), 100):
                await stream.write(answer[i : i + 100])
            await stream.write_eof()
            return stream
        if msg["method"] == "tools/call":
            result = {"content": [{"type": "text", "text": "ok"}]}
        response = web.json_response({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        response.set_cookie("upstream-session", "belongs-to-the-first-caller")
        return response


@pytest.fixture
async def upstream(serve_post: Any) -> AsyncIterator[tuple[Upstream, str]]:
    server = Upstream()
    async with serve_post(server.handle) as url:
        yield server, url


async def test_cookies_from_one_session_never_reach_another(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    http = McpHttp()
    try:
        first = McpSession(http, url, headers={"Authorization": "Bearer user-1"})
        await first.initialize()
        second = McpSession(http, url, headers={"Authorization": "Bearer user-2"})
        await second.initialize()
        result = await second.call_tool("echo", {})
        assert json.loads(result.raw)["content"][0]["text"] == "ok" and not result.is_error
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


async def test_a_tool_result_passes_through_as_sent(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    http = McpHttp()
    try:
        session = McpSession(http, url)
        await session.initialize()
        result_json = b'{ "isError" : true, "content":[{"text":"no","type":"text"}], "z":{"a":[1,2.50]}}'
        server.call_answer = b'{"id": %d, "result": ' + result_json + b', "jsonrpc": "2.0"}'
        result = await session.call_tool("t", {})
        assert result.raw == result_json and result.is_error
        server.call_answer = b'{"jsonrpc":"2.0","id":%d,"error":{"code":-32602,"message":"bad"}}'
        with pytest.raises(UpstreamRpcError, match="bad"):
            await session.call_tool("t", {})
        for bad in (
            b'{"jsonrpc":"2.0","id":%d,"result":[1]}',  # not an object
            b'{"jsonrpc":"2.0","id":%d,"result":{"text":"\xff"}}',  # not UTF-8
            b'{"jsonrpc":"2.0","id":%d,"result":{"a":[1,}}',  # not JSON
            b'{"jsonrpc":"2.0","id":%d,"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ):
            server.call_answer = bad
            with pytest.raises(NotAnMcpServer):
                await session.call_tool("t", {})
        server.call_answer = b'{"jsonrpc":"2.0","id":999999,"result":{}}'  # %d left out: another id
        with pytest.raises(NotAnMcpServer, match="no JSON-RPC response"):
            await session.call_tool("t", {})
    finally:
        await http.close()


async def test_answers_over_the_limit_and_malformed_errors_are_refused(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    http = McpHttp(max_response_bytes=1000)
    try:
        session = McpSession(http, url)
        await session.initialize()
        text = (
            b'{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"' + b"x" * 2000 + b'"}]}}'
        )
        for chunked in (False, True):
            server.call_answer, server.chunked = text, chunked
            with pytest.raises(UpstreamTooLarge, match="larger than 1000 bytes"):
                await session.call_tool("t", {})
            server.call_answer = text.replace(b"x" * 2000, b"small")
            assert json.loads((await session.call_tool("t", {})).raw)["content"][0]["text"] == "small"
        for code in (b'"oops"', b"1.5", b"true", b"null", b"[1]"):
            server.call_answer = b'{"jsonrpc":"2.0","id":%d,"error":{"code":' + code + b',"message":"m"}}'
            with pytest.raises(NotAnMcpServer, match="malformed JSON-RPC error"):
                await session.call_tool("t", {})
        server.call_answer = b'{"jsonrpc":"2.0","id":%d,"error":{"code":-32000,"message":7}}'
        with pytest.raises(NotAnMcpServer, match="malformed JSON-RPC error"):
            await session.call_tool("t", {})
    finally:
        await http.close()
