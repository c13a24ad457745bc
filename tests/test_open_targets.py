"""Open targets end to end: sync through the sync-worker, tools/list and tools/call through the gateway."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from admin import Admin, target_body, unique
from harness import mcp_client
from rawmcp import open_session, rpc


async def _direct_tools(url: str) -> list[Any]:
    async with mcp_client(url, mode="legacy") as client:
        return await _all_tools(client)


async def _all_tools(client: Any) -> list[Any]:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_two_targets_listed_and_called_like_direct(
    stack: Any, sdk_server: Any, everything_server: Any, mode: str
) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.ready_target(gateway["gatewayId"], "sdk", sdk_server.url)
        await admin.ready_target(gateway["gatewayId"], "everything", everything_server.url)

    direct = {
        "sdk": await _direct_tools(sdk_server.url),
        "everything": await _direct_tools(everything_server.url),
    }
    assert len(direct["sdk"]) >= 3

    async with mcp_client(gateway["gatewayUrl"], mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        listed = {t.name: t for t in await _all_tools(client)}
        expected = {f"{target}___{t.name}": t for target, tools in direct.items() for t in tools}
        assert set(listed) == set(expected)
        for name, tool in expected.items():
            assert listed[name].description == tool.description
            assert listed[name].input_schema == tool.input_schema

        via_gateway = await client.call_tool("sdk___add", {"a": 20, "b": 22})
        everything_echo = await client.call_tool("everything___echo", {"message": "hi"})
    async with mcp_client(sdk_server.url, mode="legacy") as direct_client:
        assert (await direct_client.call_tool("add", {"a": 20, "b": 22})).content == via_gateway.content
    assert not via_gateway.is_error
    assert "hi" in everything_echo.content[0].text


async def test_json_response_target_and_tool_errors_pass_through(stack: Any, sdk_server_json: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.ready_target(gateway["gatewayId"], "jsonsrv", sdk_server_json.url)
    async with mcp_client(gateway["gatewayUrl"]) as client:
        ok = await client.call_tool("jsonsrv___echo", {"text": "plain json"})
        failed = await client.call_tool("jsonsrv___fail", {})
    assert ok.content[0].text == "plain json"
    assert failed.is_error


async def test_250_tools_page_through_upstream_and_gateway_pages(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(extra_tools=250, page_size=40)  # the upstream pages too
    small_pages = stack.start_gateway_replica(GATEWAY_TOOLS_PAGE_SIZE="100")
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        target = await admin.ready_target(gateway["gatewayId"], "many", upstream.url)
    assert target["toolCount"] == len(await _direct_tools(upstream.url)) > 250

    gateway_url = f"{small_pages.url}/gateways/{gateway['gatewayId']}/mcp"
    async with mcp_client(gateway_url) as client:
        first = await client.list_tools()
        assert len(first.tools) == 100 and first.next_cursor
        tools = await _all_tools(client)
    names = [t.name for t in tools]
    assert len(names) == len(set(names)) == target["toolCount"]
    assert {f"many___tool_{i:04d}" for i in range(250)} <= set(names)


async def test_down_target_fails_with_reason_then_recovers_on_synchronize(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk()
    upstream.stop()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        created = await admin.create_target(gateway["gatewayId"], target_body("flaky", upstream.url))
        failed = await admin.wait_status(gateway["gatewayId"], created["targetId"])
        assert failed["status"] == "FAILED"
        assert "unreachable" in failed["statusReasons"][0].lower()

        upstream.start()
        upstream.wait_port()
        r = await admin.http.put(
            f"/gateways/{gateway['gatewayId']}/synchronizeTargets",
            json={"targetIdList": [created["targetId"]]},
        )
        assert r.status_code == 202, r.text
        assert r.json()["targets"][0]["status"] == "SYNCHRONIZING"
        ready = await admin.wait_status(gateway["gatewayId"], created["targetId"])
        assert ready["status"] == "READY" and ready["toolCount"] >= 3


async def test_not_an_mcp_server_fails_with_reason(stack: Any, not_mcp_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        created = await admin.create_target(gateway["gatewayId"], target_body("html", not_mcp_server.url))
        failed = await admin.wait_status(gateway["gatewayId"], created["targetId"])
    assert failed["status"] == "FAILED"
    assert "not an mcp server" in failed["statusReasons"][0].lower()


async def test_update_endpoint_resyncs(stack: Any, sdk_server: Any, upstreams: Any) -> None:
    bigger = upstreams.sdk(extra_tools=5)
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        first = await admin.ready_target(gid, "moving", sdk_server.url)
        r = await admin.http.put(
            f"/gateways/{gid}/targets/{first['targetId']}", json=target_body("moving", bigger.url)
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "UPDATING" and r.json()["generation"] == 2
        updated = await admin.wait_status(gid, first["targetId"])
    assert updated["status"] == "READY"
    assert updated["toolCount"] == first["toolCount"] + 5
    assert updated["observedGeneration"] == 2
    async with mcp_client(gateway["gatewayUrl"]) as client:
        result = await client.call_tool("moving___tool_0003", {"x": 7})
    assert "tool_0003" in result.content[0].text


SLOW = {"name": "slow", "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}}
ECHO = {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}


async def test_a_target_change_does_not_cut_a_call_in_flight(stack: Any, sdk_server_json: Any) -> None:
    """A change of a target drops its pooled upstream sessions; one carrying a call is closed after
    the call is answered, not under it (the server would end the call with the session)."""
    # tools given inline: no sync records an era, so the gateway opens a handshake-era session
    body = target_body("busy", sdk_server_json.url, inline_tools=[SLOW, ECHO])
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient(timeout=30) as http:
        gateway = await admin.create_gateway()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        target = await admin.create_target(gid, body)
        session = await open_session(http, url)
        call = {"name": "busy___slow", "arguments": {"seconds": 2}}
        slow = asyncio.create_task(rpc(http, url, session, "tools/call", call))
        await asyncio.sleep(0.5)  # the call has reached the target, which answers after 2 s
        r = await admin.http.put(f"/gateways/{gid}/targets/{target['targetId']}", json=body)
        assert r.status_code == 202 and r.json()["generation"] == 2, r.text
        answer = await slow
        assert answer.get("result", {}).get("content", [{}])[0].get("text") == "done", answer
        echo = {"name": "busy___echo", "arguments": {"text": "after"}}
        again = await rpc(http, url, session, "tools/call", echo)  # on a new session
        assert again.get("result", {}).get("content", [{}])[0].get("text") == "after", again


async def test_delete_removes_tools_at_once_and_calls_fail_cleanly(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        target = await admin.ready_target(gateway["gatewayId"], "doomed", sdk_server.url)
        async with mcp_client(gateway["gatewayUrl"]) as client:
            assert any(t.name == "doomed___echo" for t in (await client.list_tools()).tools)
            r = await admin.http.delete(f"/gateways/{gateway['gatewayId']}/targets/{target['targetId']}")
            assert r.status_code == 202 and r.json()["status"] == "DELETING"
            assert not (await client.list_tools()).tools
        r = await admin.http.get(f"/gateways/{gateway['gatewayId']}/targets/{target['targetId']}")
        assert r.status_code == 404
    async with httpx.AsyncClient() as http:
        session = await open_session(http, gateway["gatewayUrl"])
        answer = await rpc(
            http,
            gateway["gatewayUrl"],
            session,
            "tools/call",
            {"name": "doomed___echo", "arguments": {"text": "x"}},
        )
    assert answer["error"]["code"] == -32602
    assert "doomed___echo" in answer["error"]["message"]


async def test_inline_schema_ready_at_once_and_exposes_only_given_tools(stack: Any, sdk_server: Any) -> None:
    given = [
        {
            "name": "echo",
            "description": "Echo it",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        }
    ]
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        created = await admin.create_target(
            gateway["gatewayId"], target_body("inline", sdk_server.url, inline_tools=given)
        )
        assert created["status"] == "READY" and created["toolCount"] == 1
        assert created["authorizationStatus"] == "NO_AUTHORIZATION_REQUIRED"
        r = await admin.http.put(
            f"/gateways/{gateway['gatewayId']}/synchronizeTargets",
            json={"targetIdList": [created["targetId"]]},
        )
        assert r.status_code == 400 and "mcpToolSchema" in r.json()["error"]["message"]
        await asyncio.sleep(0.5)  # the sync-worker would have had time to (wrongly) sync it
        assert (await admin.target(gateway["gatewayId"], created["targetId"]))["toolCount"] == 1
    async with mcp_client(gateway["gatewayUrl"]) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["inline___echo"]
        assert (await client.call_tool("inline___echo", {"text": "routed"})).content[0].text == "routed"


async def test_unique_target_names_per_gateway(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.create_target(gateway["gatewayId"], target_body("twin", sdk_server.url))
        r = await admin.http.post(
            f"/gateways/{gateway['gatewayId']}/targets", json=target_body("twin", sdk_server.url)
        )
        assert r.status_code == 409
        other = await admin.create_gateway(unique("other"))
        await admin.create_target(other["gatewayId"], target_body("twin", sdk_server.url))


async def test_hanging_target_fails_with_a_timeout_reason(stack: Any, hanging_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        created = await admin.create_target(gateway["gatewayId"], target_body("hangs", hanging_server.url))
        failed = await admin.wait_status(gateway["gatewayId"], created["targetId"])
    assert failed["status"] == "FAILED"
    assert "timed out" in failed["statusReasons"][0]


async def test_json_schema_keywords_survive_the_cache(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(tricky_schema=True)
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.ready_target(gateway["gatewayId"], "tricky", upstream.url)
    direct = {t.name: t for t in await _direct_tools(upstream.url)}
    async with mcp_client(gateway["gatewayUrl"]) as client:
        via = {t.name: t for t in (await client.list_tools()).tools}
    assert via["tricky___tricky.schema"].input_schema == direct["tricky.schema"].input_schema
    assert "$defs" in via["tricky___tricky.schema"].input_schema


async def test_a_missed_catalog_event_heals_by_itself(stack: Any, sdk_server: Any) -> None:
    """A change written without an event (as if the gateway missed it) reaches tools/list anyway."""
    from pymongo import AsyncMongoClient

    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        target = await admin.ready_target(gateway["gatewayId"], "quiet", sdk_server.url)
    mongo: Any = AsyncMongoClient(stack.mongo_url)
    targets = mongo[stack.gatehouse_db]["targets"]
    try:
        await targets.update_one(
            {"_id": target["targetId"]},
            {"$set": {"status.status": "FAILED", "stamp": "changed-behind-its-back"}},
        )
        async with mcp_client(gateway["gatewayUrl"]) as client:
            # the periodic reload (every 2 s here) heals it; a loaded machine may take several rounds
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not (await client.list_tools()).tools:
                    break
                await asyncio.sleep(0.1)
            listed = (await client.list_tools()).tools
        if listed:  # say what the gateway missed: the stored document as it is now
            stored = await targets.find_one({"_id": target["targetId"]}, {"status": 1, "stamp": 1})
            raise AssertionError(f"still listed after 30 s: {[t.name for t in listed]}; stored: {stored}")
    finally:
        await mongo.close()
