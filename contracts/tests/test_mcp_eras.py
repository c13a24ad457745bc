"""The shared MCP client's two eras against a small scripted HTTP peer on a socket: which answers to
the ``server/discover`` probe fall back to ``initialize`` (the SDK's rules), what a 2026-07-28
request carries, handshake-era cancellation, typed -32042 and ``input_required``, SSE in pieces.
(The official SDK's servers are the real peers in tests/test_target_eras.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from gatehouse_contracts.mcp_client import (
    CallOptions,
    McpHttp,
    McpSession,
    NotAnMcpServer,
    UpstreamUnauthorized,
    UpstreamUrlElicitationRequired,
    _SseParser,
    encode_header_value,
    param_headers,
)
from gatehouse_contracts.tools import InvalidTool, header_map, with_valid_headers

Discover = Callable[[dict[str, Any]], web.StreamResponse]


def rpc_error(msg_id: Any, code: int, message: str, data: Any = None, status: int = 200) -> web.Response:
    error = {"code": code, "message": message, **({"data": data} if data is not None else {})}
    return web.json_response({"jsonrpc": "2.0", "id": msg_id, "error": error}, status=status)


class Peer:
    """Answers initialize (handshake era) and tools/call; ``discover`` scripts the probe's answer."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.discover: Discover = lambda msg: rpc_error(msg["id"], -32601, "Method not found")
        self.call: Callable[[dict[str, Any]], Any] = lambda msg: {"content": [], "isError": False}
        self.hold = asyncio.Event()  # tools/call "hold" waits for this
        self.arrived: dict[str, asyncio.Event] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        msg = json.loads(await request.read())
        self.requests.append((dict(request.headers), msg))
        self.arrived.setdefault(msg["method"], asyncio.Event()).set()
        if "id" not in msg:
            return web.Response(status=202)
        if msg["method"] == "server/discover":
            return self.discover(msg)
        if msg["method"] == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "p"}}
            return web.json_response(
                {"jsonrpc": "2.0", "id": msg["id"], "result": result}, headers={"Mcp-Session-Id": "s1"}
            )
        if msg["params"].get("name") == "hold":
            await self.hold.wait()
        answer = self.call(msg)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response({"jsonrpc": "2.0", "id": msg["id"], "result": answer})

    async def seen(self, method: str) -> None:
        """Until a ``method`` message arrives (again: each wait is for a new one)."""
        event = self.arrived.setdefault(method, asyncio.Event())
        await asyncio.wait_for(event.wait(), 10)
        event.clear()

    def methods(self) -> list[str]:
        return [msg["method"] for _, msg in self.requests]


@pytest.fixture
async def peer(serve_post: Any) -> AsyncIterator[tuple[Peer, str]]:
    server = Peer()
    async with serve_post(server.handle) as url:
        yield server, url
        server.hold.set()


MODERN_DISCOVER = {
    "resultType": "complete",
    "supportedVersions": ["2026-07-28", "2025-11-25"],
    "capabilities": {"tools": {}},
    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-peer", "version": "1"}},
}


@pytest.mark.parametrize(
    "answer",
    [
        lambda m: rpc_error(m["id"], -32601, "Method not found", status=404),  # unknown method
        lambda m: rpc_error(None, -32600, "Bad Request: Missing session ID", status=400),  # a legacy SDK
        lambda m: web.Response(status=400),  # an HTTP error without a body
        lambda m: web.Response(status=405, text="<html>no</html>", content_type="text/html"),
        lambda m: rpc_error(m["id"], -32022, "Unsupported", {"supported": ["2025-11-25"]}, 400),
        lambda m: web.json_response(
            {"jsonrpc": "2.0", "id": m["id"], "result": {"supportedVersions": ["2025-11-25"]}}
        ),
        lambda m: web.json_response({"jsonrpc": "2.0", "id": m["id"], "result": {"nothing": 1}}),
    ],
    ids=["404-method", "400-legacy-sdk", "400-empty", "405-html", "32022-handshake", "no-modern", "unparsed"],
)
async def test_answers_that_are_not_modern_fall_back_to_initialize(
    peer: tuple[Peer, str], answer: Discover
) -> None:
    server, url = peer
    server.discover = answer
    http = McpHttp()
    try:
        session = McpSession(http, url)
        assert await session.open() == "2025-11-25"
        assert session.session_id == "s1" and not session.modern
        await session.call_tool("t", {})
    finally:
        await http.close()
    assert server.methods() == ["server/discover", "initialize", "notifications/initialized", "tools/call"]
    headers, call = server.requests[-1]
    assert headers["Mcp-Session-Id"] == "s1" and headers["MCP-Protocol-Version"] == "2025-11-25"
    assert "_meta" not in call["params"] and "Mcp-Method" not in headers


async def test_a_modern_only_server_sharing_no_version_is_refused_and_401_is_not_an_era(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer
    http = McpHttp()
    try:
        server.discover = lambda m: rpc_error(
            m["id"], -32022, "Unsupported", {"supported": ["2031-01-01"]}, 400
        )
        with pytest.raises(NotAnMcpServer, match="speaks only MCP 2031-01-01"):
            await McpSession(http, url).open()
        server.discover = lambda m: web.Response(status=401)
        with pytest.raises(UpstreamUnauthorized):
            await McpSession(http, url).open()
    finally:
        await http.close()
    assert "initialize" not in server.methods()


async def test_a_modern_session_sends_the_envelope_and_mirrored_headers(peer: tuple[Peer, str]) -> None:
    server, url = peer
    server.discover = lambda m: web.json_response(
        {"jsonrpc": "2.0", "id": m["id"], "result": MODERN_DISCOVER}
    )
    http = McpHttp()
    try:
        session = McpSession(http, url, headers={"Authorization": "Bearer x"})
        assert await session.open() == "2026-07-28"
        assert session.modern and session.server_info == {"name": "modern-peer", "version": "1"}
        await session.call_tool(
            "wetter ☀", {"a": 1}, {"progressToken": 7, "io.modelcontextprotocol/protocolVersion": "x"}
        )
        await session.close()  # nothing to end: no DELETE
        known = McpSession(http, url)
        await known.open("2026-07-28")  # the era a sync recorded: no probe
        await known.call_tool(
            "plain", {}, None, CallOptions(client_capabilities={"elicitation": {"url": {}}})
        )
    finally:
        await http.close()
    assert server.methods() == ["server/discover", "tools/call", "tools/call"]
    (probe_headers, probe), (headers, call), (_, second) = server.requests
    assert (
        probe_headers["MCP-Protocol-Version"] == "2026-07-28"
        and probe_headers["Mcp-Method"] == "server/discover"
    )
    assert probe["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert headers["MCP-Protocol-Version"] == "2026-07-28"
    assert headers["Mcp-Method"] == "tools/call"
    assert headers["Mcp-Name"] == encode_header_value("wetter ☀") == "=?base64?d2V0dGVyIOKYgA==?="
    assert headers["Authorization"] == "Bearer x" and "Mcp-Session-Id" not in headers
    assert call["params"]["_meta"] == {
        "progressToken": 7,
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",  # ours, not the caller's
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "gatehouse", "version": "0.1.0"},
    }
    assert second["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] == {
        "elicitation": {"url": {}}
    }


async def test_header_values_are_base64_only_when_they_must_be() -> None:
    assert encode_header_value("get_weather") == "get_weather"
    assert encode_header_value(" padded ") == "=?base64?IHBhZGRlZCA=?="
    assert encode_header_value("line1\nline2") == "=?base64?bGluZTEKbGluZTI=?="
    assert encode_header_value("=?base64?literal?=") == "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="


async def test_input_required_and_32042_come_back_typed(peer: tuple[Peer, str]) -> None:
    server, url = peer
    asked = {
        "resultType": "input_required",
        "inputRequests": {"k": {"method": "elicitation/create", "params": {"mode": "form", "message": "m"}}},
        "requestState": "opaque",
    }
    http = McpHttp()
    try:
        session = McpSession(http, url)
        await session.open("2026-07-28")
        server.call = lambda m: asked
        result = await session.call_tool("t", {})
        assert result.input_required is not None
        assert json.loads(result.input_required.raw) == asked
        assert result.input_required.request_state == "opaque"
        assert result.input_required.input_requests == asked["inputRequests"]
        fallback = json.loads(result.raw)
        assert result.is_error and fallback["isError"] is True
        assert "elicitation/create" in fallback["content"][0]["text"]
        # the retry carries the answers and the state back
        server.call = lambda m: {"content": [], "isError": False, "resultType": "complete"}
        done = await session.call_tool(
            "t", {}, None, CallOptions(input_responses={"k": {"action": "accept"}}, request_state="opaque")
        )
        assert done.input_required is None and not done.is_error
        assert server.requests[-1][1]["params"]["inputResponses"] == {"k": {"action": "accept"}}
        assert server.requests[-1][1]["params"]["requestState"] == "opaque"
        server.call = lambda m: {"resultType": "input_required"}  # neither requests nor state
        with pytest.raises(NotAnMcpServer, match="neither inputRequests nor requestState"):
            await session.call_tool("t", {})

        legacy = McpSession(http, url)
        await legacy.open("2025-11-25")
        elicitation = {
            "mode": "url",
            "url": "https://idp.example/consent",
            "message": "log in",
            "elicitationId": "e",
        }
        server.call = lambda m: rpc_error(
            m["id"], -32042, "URL elicitation required", {"elicitations": [elicitation, 3]}
        )
        with pytest.raises(UpstreamUrlElicitationRequired) as caught:
            await legacy.call_tool("t", {})
        assert caught.value.rpc_code == -32042 and caught.value.elicitations == [elicitation]
    finally:
        await http.close()


async def _cancel_held_call(server: Peer, session: McpSession) -> None:
    """Start a call the peer holds, cancel it once the peer has it."""
    call = asyncio.create_task(session.call_tool("hold", {}))
    await server.seen("tools/call")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_cancelling_a_handshake_era_call_sends_notifications_cancelled(peer: tuple[Peer, str]) -> None:
    server, url = peer
    http = McpHttp()
    try:
        session = McpSession(http, url)
        await session.open("2025-11-25")
        await _cancel_held_call(server, session)
        await server.seen("notifications/cancelled")
        headers, note = server.requests[-1]
        held_id = server.requests[-2][1]["id"]
        assert note["params"] == {"requestId": held_id, "reason": "cancelled"}
        assert headers["Mcp-Session-Id"] == "s1"

        modern = McpSession(http, url)
        await modern.open("2026-07-28")
        await _cancel_held_call(server, modern)
        server.hold.set()
        await asyncio.sleep(0.1)  # (time for a notification that must not come)
    finally:
        await http.close()
    # 2026-07-28: closing the stream is the signal, no notification
    assert server.methods().count("notifications/cancelled") == 1


def test_sse_split_anywhere_gives_the_same_messages() -> None:
    body = (
        'event: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: keep-alive\r\n\r\ndata: {"b": "\u2028"}\r\n\r\n'
    )
    whole = _SseParser()
    expected = whole.feed(body) + whole.close()
    assert expected == [{"a": 1}, {"b": "\u2028"}]
    for cut in range(1, len(body)):
        parser = _SseParser()
        got = parser.feed(body[:cut]) + parser.feed(body[cut:]) + parser.close()
        assert got == expected, cut


def _tool(properties: dict[str, Any], **schema: Any) -> dict[str, Any]:
    return {"name": "t", "inputSchema": {"type": "object", "properties": properties, **schema}}


def test_x_mcp_header_annotations_are_checked_as_2026_07_28_asks() -> None:
    nested = _tool(
        {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry-Run"}}},
            "x-mcp-header": {"type": "string"},  # a property of that name is no annotation
        }
    )
    assert header_map(nested) == ((("opts", "dry"), "Dry-Run"), (("region",), "Region"))
    assert header_map(_tool({"a": {"type": "string"}})) == ()
    bad = {
        "number": _tool({"r": {"type": "number", "x-mcp-header": "R"}}),
        "no type": _tool({"r": {"x-mcp-header": "R"}}),
        "not a token": _tool({"r": {"type": "string", "x-mcp-header": "R egion"}}),
        "empty": _tool({"r": {"type": "string", "x-mcp-header": ""}}),
        "same name": _tool(
            {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}
        ),
        "in items": _tool({"l": {"type": "array", "items": {"type": "string", "x-mcp-header": "L"}}}),
        "in anyOf": _tool({}, anyOf=[{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]),
        "in $defs": _tool({}, **{"$defs": {"D": {"type": "string", "x-mcp-header": "D"}}}),
        "on the root": {"name": "t", "inputSchema": {"type": "object", "x-mcp-header": "Root"}},
    }
    for why, tool in bad.items():
        with pytest.raises(InvalidTool, match="x-mcp-header"):
            header_map(tool)
            pytest.fail(why)
    kept, dropped = with_valid_headers([nested, bad["number"]])
    assert kept == [nested] and len(dropped) == 1 and "not a string, integer or boolean" in dropped[0]


def test_param_headers_mirror_present_primitive_arguments() -> None:
    found = header_map(
        _tool(
            {
                "s": {"type": "string", "x-mcp-header": "S"},
                "i": {"type": "integer", "x-mcp-header": "I"},
                "b": {"type": "boolean", "x-mcp-header": "B"},
                "n": {"type": "string", "x-mcp-header": "N"},
                "o": {"type": "object", "properties": {"deep": {"type": "string", "x-mcp-header": "Deep"}}},
            }
        )
    )
    headers = param_headers(found, {"s": "Hello, 世界", "i": -7, "b": False, "n": None, "o": {"deep": "d"}})
    assert headers == {
        "Mcp-Param-S": "=?base64?SGVsbG8sIOS4lueVjA==?=",
        "Mcp-Param-I": "-7",
        "Mcp-Param-B": "false",
        "Mcp-Param-Deep": "d",
    }
    assert param_headers(found, {"i": 2**60, "o": "not an object"}) == {}  # no header form


async def test_a_state_only_input_required_and_a_failing_progress_callback(peer: tuple[Peer, str]) -> None:
    server, url = peer

    def sse(msg: dict[str, Any]) -> web.Response:
        token = msg["params"]["_meta"]["progressToken"]
        progress = {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": token, "progress": 1},
        }
        done = {"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [], "resultType": "complete"}}
        body = f"data: {json.dumps(progress)}\n\ndata: {json.dumps(done)}\n\n"
        return web.Response(text=body, content_type="text/event-stream")

    async def refuse(params: dict[str, Any]) -> None:
        raise ValueError("the client went away")

    http = McpHttp()
    try:
        session = McpSession(http, url)
        await session.open("2026-07-28")
        server.call = lambda m: {"resultType": "input_required", "requestState": "again"}  # retry at once
        result = await session.call_tool("t", {})
        assert result.input_required is not None and result.input_required.input_requests == {}
        assert result.input_required.request_state == "again" and "a retry" in result.raw.decode()
        server.call = sse
        with pytest.raises(ValueError, match="the client went away"):  # the caller's own error
            await session.call_tool("t", {}, None, CallOptions(on_progress=refuse))
    finally:
        await http.close()
