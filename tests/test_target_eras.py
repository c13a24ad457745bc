"""Targets of both MCP eras: the sync finds the era a target speaks (a server/discover probe) and
records it; the gateway then calls each target in its own era. Real peers: the official SDK's
server in three shapes (2026-07-28 only, the SDK's own dual-era server, handshake only) and the
SDK's client in mode="legacy" through the gateway; progress and cancellation against the SDK
servers directly with the gateway's own MCP client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from admin import Admin
from harness import mcp_client

from gatehouse_contracts.mcp_client import CallOptions, McpHttp, McpSession

ERAS = {"modern": "2026-07-28", "dual": "2026-07-28", "legacy": "2025-11-25"}
# the targets of the first test: name -> (era, JSON answers instead of SSE streams)
TARGETS = {
    "modern": ("modern", False),
    "dual": ("dual", False),
    "legacy": ("legacy", False),
    "json": ("modern", True),
}


async def test_each_era_is_recorded_and_served_to_a_handshake_era_client(stack: Any, upstreams: Any) -> None:
    servers = {
        name: upstreams.sdk(era=era, json_response=json, interactive_tools=True)
        for name, (era, json) in TARGETS.items()
    }
    versions = {name: ERAS[era] for name, (era, _) in TARGETS.items()}
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        for name, server in servers.items():
            target = await admin.ready_target(gid, name, server.url)
            assert target["protocolVersion"] == versions[name], target
            assert (await admin.target(gid, target["targetId"]))["protocolVersion"] == versions[name]
        listed = (await admin.http.get(f"/gateways/{gid}/targets")).json()["items"]
    assert {t["name"]: t["protocolVersion"] for t in listed} == versions

    async with mcp_client(gateway["gatewayUrl"], mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        names = {t.name for t in (await client.list_tools()).tools}
        for era in TARGETS:
            assert {f"{era}___echo", f"{era}___add", f"{era}___steps"} <= names
            result = await client.call_tool(f"{era}___add", {"a": 20, "b": 22})
            assert not result.is_error and result.content[0].text == "42", (era, result)
            echoed = await client.call_tool(f"{era}___echo", {"text": "héllo ✓"})
            assert echoed.content[0].text == "héllo ✓"
            failed = await client.call_tool(f"{era}___fail", {})
            assert failed.is_error and "always fails" in failed.content[0].text

        # x-mcp-header: a 2026-07-28 call mirrors the argument into Mcp-Param-Region (the SDK
        # server refuses the call without it); a tool whose annotation is invalid is left out
        for era in ("modern", "dual", "json"):
            regional = await client.call_tool(f"{era}___regional", {"region": "eu-west ü"})
            assert regional.content[0].text == "eu-west ü / =?base64?ZXUtd2VzdCDDvA==?=", regional
            assert f"{era}___badheader" not in names
        assert "legacy___badheader" in names  # the handshake era has no mirrored headers
        plain = await client.call_tool("legacy___regional", {"region": "eu"})
        assert plain.content[0].text == "eu / None"

        # a modern target's tool that asks for input: the handshake-era client gets an error
        # result that says so (it cannot answer the target's elicitation through the gateway)
        for era in ("modern", "json"):  # (an SSE answer, and a JSON one)
            asked = await client.call_tool(f"{era}___confirm", {"text": "x"})
            assert asked.is_error
            assert "needs more input" in asked.content[0].text
            assert "elicitation/create" in asked.content[0].text
            assert "2026-07-28" in asked.content[0].text

    # the modern-only server never saw an initialize: neither the sync nor the gateway sent one
    async with httpx.AsyncClient() as http:
        stats = (await http.get(servers["modern"].url.replace("/mcp", "/stats"))).json()
        legacy_stats = (await http.get(servers["legacy"].url.replace("/mcp", "/stats"))).json()
    assert stats["initialize"] == 0
    assert legacy_stats["initialize"] == 2  # the sync's session and the gateway's pooled one


async def _stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return (await http.get(url.replace("/mcp", "/stats"))).json()  # type: ignore[no-any-return]


async def test_progress_is_surfaced_and_cancelling_the_caller_cancels_the_call(upstreams: Any) -> None:
    """Against each era's SDK server: every progress notification of a call reaches the callback
    while the call runs, and cancelling the calling task stops the tool at the server (the stream
    closes; in the handshake era notifications/cancelled says so too)."""
    http = McpHttp()
    try:
        for era, version in ERAS.items():
            server = upstreams.sdk(era=era, interactive_tools=True)
            session = McpSession(http, server.url, timeout=30)
            assert await session.open() == version
            seen: list[dict[str, Any]] = []

            async def on_progress(params: dict[str, Any], seen: list[dict[str, Any]] = seen) -> None:
                seen.append(params)

            done = await session.call_tool(
                "steps", {"steps": 3, "seconds": 0.01}, {"progressToken": "mine"}, CallOptions(on_progress)
            )
            assert b"done" in done.raw
            assert [(p["progressToken"], p["progress"], p["total"]) for p in seen] == [
                ("mine", 1, 3),
                ("mine", 2, 3),
                ("mine", 3, 3),
            ], era

            started = asyncio.Event()

            async def first_step(params: dict[str, Any], started: asyncio.Event = started) -> None:
                started.set()

            call = asyncio.create_task(
                session.call_tool("steps", {"steps": 600, "seconds": 0.1}, None, CallOptions(first_step))
            )
            await asyncio.wait_for(started.wait(), 10)  # the tool is running and reported once
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                pass
            deadline = asyncio.get_running_loop().time() + 10
            while (await _stats(server.url))["cancelled"] < 1:  # the server's own count
                assert asyncio.get_running_loop().time() < deadline, f"{era}: the tool was not cancelled"
                await asyncio.sleep(0.05)
            # the session is still good for the next call
            again = await session.call_tool("add", {"a": 2, "b": 3})
            assert b'"5"' in again.raw
            await session.close()
    finally:
        await http.close()
