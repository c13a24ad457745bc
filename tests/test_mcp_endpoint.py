"""The gateway's MCP endpoint on the wire: Streamable HTTP rules and JSON-RPC errors (2025-11-25)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from admin import Admin
from rawmcp import initialize, open_session, post, rpc


@pytest.fixture
async def gateway(stack: Any, sdk_server: Any) -> dict[str, Any]:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "sdk", sdk_server.url)
        return gw


async def test_initialize_negotiates_versions(gateway: dict[str, Any]) -> None:
    url = gateway["gatewayUrl"]
    async with httpx.AsyncClient() as http:
        for asked, answered in [
            ("2025-11-25", "2025-11-25"),
            ("2025-06-18", "2025-06-18"),
            ("2024-11-05", "2024-11-05"),
            ("1999-01-01", "2025-11-25"),
        ]:
            r = await post(
                http,
                url,
                initialize(asked),
            )
            assert r.status_code == 200
            result = r.json()["result"]
            assert result["protocolVersion"] == answered
            assert result["capabilities"]["tools"] == {"listChanged": False}
            assert result["serverInfo"]["name"] == "gatehouse"
            assert r.headers["mcp-session-id"].isascii()


async def test_session_lifecycle_ping_and_delete(gateway: dict[str, Any]) -> None:
    url = gateway["gatewayUrl"]
    async with httpx.AsyncClient() as http:
        session = await open_session(http, url)
        assert (await rpc(http, url, session, "ping"))["result"] == {}
        r = await http.delete(url, headers={"Mcp-Session-Id": session})
        assert r.status_code == 204
        r = await post(http, url, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session=session)
        assert r.status_code == 404


async def test_transport_refusals(gateway: dict[str, Any]) -> None:
    url = gateway["gatewayUrl"]
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient() as http:
        session = await open_session(http, url)
        assert (await http.get(url, headers={"Accept": "text/event-stream"})).status_code == 405
        assert (await post(http, url, ping)).status_code == 400  # no session
        assert (await post(http, url, ping, session="forged.signature")).status_code == 404
        tampered = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
        assert (await post(http, url, ping, session=tampered)).status_code == 404
        bad_version = await post(
            http, url, ping, session=session, headers={"MCP-Protocol-Version": "2099-01-01"}
        )
        assert bad_version.status_code == 400
        evil = await post(http, url, ping, session=session, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403
        own = await post(http, url, ping, session=session, headers={"Origin": url.split("/gateways")[0]})
        assert own.status_code == 200
        text = await post(
            http, url, None, session=session, raw=b"ping", headers={"Content-Type": "text/plain"}
        )
        assert text.status_code == 415
        assert (await post(http, url.replace(gateway["gatewayId"], "nope"), ping)).status_code == 404


async def test_json_rpc_errors(gateway: dict[str, Any]) -> None:
    url = gateway["gatewayUrl"]
    async with httpx.AsyncClient() as http:
        session = await open_session(http, url)
        malformed = await post(http, url, None, session=session, raw=b'{"jsonrpc": "2.0", "id": 1,')
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == -32700
        invalid = await post(http, url, {"jsonrpc": "1.0", "id": 1, "method": "ping"}, session=session)
        assert invalid.json()["error"]["code"] == -32600
        no_method = await post(http, url, {"jsonrpc": "2.0", "id": 1}, session=session)
        assert no_method.json()["error"]["code"] == -32600
        assert (await rpc(http, url, session, "resources/list"))["error"]["code"] == -32601
        unknown_tool = await rpc(http, url, session, "tools/call", {"name": "sdk___nope", "arguments": {}})
        assert unknown_tool["error"]["code"] == -32602
        bad_args = await rpc(http, url, session, "tools/call", {"name": "sdk___echo", "arguments": [1]})
        assert bad_args["error"]["code"] == -32602
        bad_cursor = await rpc(http, url, session, "tools/list", {"cursor": "!!not-a-cursor"})
        assert bad_cursor["error"]["code"] == -32602
        # without a 2026-07-28 header, server/discover is a method of no 2025 version
        discover = await post(
            http, url, {"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {}}
        )
        assert discover.status_code == 200
        assert discover.json() == {
            "jsonrpc": "2.0",
            "id": 7,
            "error": {"code": -32601, "message": "Method not found: server/discover"},
        }
        # with it, the 2026-07-28 endpoint answers (test_modern_era.py); here: its envelope is missing
        discover = await post(
            http,
            url,
            {"jsonrpc": "2.0", "id": 8, "method": "server/discover", "params": {}},
            headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
        )
        assert discover.status_code == 400 and discover.json()["error"]["code"] == -32602


async def test_unreachable_target_is_a_json_rpc_error_naming_it(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "vanishing", upstream.url)
    upstream.stop()
    async with httpx.AsyncClient() as http:
        session = await open_session(http, gw["gatewayUrl"])
        answer = await rpc(
            http,
            gw["gatewayUrl"],
            session,
            "tools/call",
            {"name": "vanishing___echo", "arguments": {"text": "x"}},
        )
    assert answer["error"]["code"] == -32001
    assert "vanishing" in answer["error"]["message"]
    assert answer["error"]["data"] == {"target": "vanishing"}


async def test_upstream_session_reused_across_calls(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(era="legacy")  # a handshake-era target: sessions to count
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "counted", upstream.url)
        await admin.ready_target(gw["gatewayId"], "other", upstream.url)
    async with httpx.AsyncClient() as http:
        session = await open_session(http, gw["gatewayUrl"])
        for i in range(5):
            answer = await rpc(
                http,
                gw["gatewayUrl"],
                session,
                "tools/call",
                {"name": "counted___echo", "arguments": {"text": str(i)}},
            )
            assert answer["result"]["content"][0]["text"] == str(i)
        stats = (await http.get(upstream.url.replace("/mcp", "/stats"))).json()
    # two syncs (one per target) + one pooled gateway session: not one initialize per call
    assert stats["initialize"] == 3


async def test_a_slow_target_does_not_hold_up_other_targets(
    stack: Any, sdk_server: Any, upstreams: Any
) -> None:
    other = upstreams.sdk()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "slowone", sdk_server.url)
        await admin.ready_target(gw["gatewayId"], "quick", other.url)
    url = gw["gatewayUrl"]
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)
        slow = asyncio.create_task(
            rpc(http, url, session, "tools/call", {"name": "slowone___slow", "arguments": {"seconds": 10}})
        )
        await asyncio.sleep(0.2)
        quick = await rpc(
            http, url, session, "tools/call", {"name": "quick___echo", "arguments": {"text": "now"}}
        )
        assert quick["result"]["content"][0]["text"] == "now"
        assert not slow.done()  # answered while the slow call still waits
        timed_out = await slow  # GATEWAY_UPSTREAM_TIMEOUT_SECONDS is 3 in the tests
    assert timed_out["error"]["code"] == -32001 and "slowone" in timed_out["error"]["message"]


async def test_hostile_headers_and_bodies_get_clean_errors(gateway: dict[str, Any]) -> None:
    url = gateway["gatewayUrl"]
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    async with httpx.AsyncClient() as http:
        session = await open_session(http, url)
        for bad in (b"\xcd\xff.\xcd", session.encode()[:-1] + b"\xe9"):
            r = await http.post(
                url,
                content=ping,
                headers=[
                    (b"Content-Type", b"application/json"),
                    (b"Accept", b"application/json, text/event-stream"),
                    (b"Mcp-Session-Id", bad),
                ],
            )
            assert r.status_code == 404 and r.json()["error"]["code"] == -32600, r.text
            assert (await http.delete(url, headers=[(b"Mcp-Session-Id", bad)])).status_code == 404
        invalid_utf8 = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xcd"}}'
        for body in (invalid_utf8, b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}'):
            r = await post(http, url, None, session=session, raw=body)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32700, r.text
        assert (await rpc(http, url, session, "ping"))["result"] == {}


async def test_line_separators_in_a_tool_result_survive_sse(gateway: dict[str, Any]) -> None:
    """The SDK server answers over SSE and leaves U+2028, U+2029 and U+0085 unescaped in its JSON;
    only CR and LF end an SSE line."""
    url = gateway["gatewayUrl"]
    text = "line\u2028separator\u2029paragraph\x85next-line"
    async with httpx.AsyncClient() as http:
        session = await open_session(http, url)
        answer = await rpc(
            http, url, session, "tools/call", {"name": "sdk___echo", "arguments": {"text": text}}
        )
    assert answer["result"]["content"][0]["text"] == text


async def test_a_malformed_upstream_error_is_an_upstream_failure(stack: Any, upstreams: Any) -> None:
    broken = upstreams.not_mcp(bad_error=True)
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "broken", broken.url)
    async with httpx.AsyncClient() as http:
        session = await open_session(http, gw["gatewayUrl"])
        answer = await rpc(http, gw["gatewayUrl"], session, "tools/call", {"name": "broken___broken"})
    assert answer["error"]["code"] == -32001 and answer["error"]["data"] == {"target": "broken"}
    assert "malformed JSON-RPC error" in answer["error"]["message"]
