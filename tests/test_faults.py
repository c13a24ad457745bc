"""Dependencies that fail and come back: NATS and MongoDB restarts during traffic.

The services are not restarted: they must reconnect by themselves, answer clear errors in between,
and keep serving what they can from memory (tools/list, calls to open targets).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest
from admin import Admin, target_body
from rawmcp import open_session, rpc


async def _ready(stack: Any, timeout: float = 60) -> None:
    """Wait until every service says NATS and MongoDB are reachable again (the gateway is ready
    without them, so its /readyz body, not its status, says so)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        for proc in (stack.gateway, stack.identity, stack.sync_worker):
            while not (
                (r := await http.get(f"{proc.url}/readyz")).status_code == 200 and all(r.json().values())
            ):
                assert time.monotonic() < deadline, f"{proc.name} did not recover"
                await asyncio.sleep(0.2)


async def test_nats_restart_during_traffic(stack: Any, nats_server: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        await admin.ready_target(gid, "steady", sdk_server.url)
        session = await open_session(http, url)
        nats_server.kill()
        try:
            # from memory: the catalog and open targets need no bus
            assert len((await rpc(http, url, session, "tools/list"))["result"]["tools"]) >= 5
            called = await rpc(
                http, url, session, "tools/call", {"name": "steady___echo", "arguments": {"text": "up"}}
            )
            assert called["result"]["content"][0]["text"] == "up"
            # what needs the bus fails clearly and changes nothing
            r = await admin.http.post(f"/gateways/{gid}/targets", json=target_body("during", sdk_server.url))
            assert r.status_code == 503 and r.json()["error"]["code"] == "ServiceUnavailableException"
            # ready means "can serve MCP", which it does: the body says NATS is down; identity,
            # which cannot work without the bus, is not ready
            ready = await http.get(f"{stack.gateway_url}/readyz")
            assert ready.status_code == 200 and ready.json() == {
                "serving": True,
                "nats": False,
                "mongodb": True,
            }
            assert (await http.get(f"{stack.identity_url}/readyz")).status_code == 503
        finally:
            nats_server.start()
            nats_server.wait_http()
        await _ready(stack)
        names = [t["name"] for t in (await admin.http.get(f"/gateways/{gid}/targets")).json()["items"]]
        assert names == ["steady"]
        after = await admin.ready_target(gid, "after", sdk_server.url)  # events flow again end to end
        assert after["toolCount"] >= 5
        tools = (await rpc(http, url, session, "tools/list"))["result"]["tools"]
        assert any(t["name"] == "after___echo" for t in tools)


@pytest.mark.skipif(
    bool(os.environ.get("MONGODB_URL")), reason="an external MongoDB cannot be restarted here"
)
async def test_mongodb_restart_during_traffic(stack: Any, mongo_server: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        target = await admin.ready_target(gid, "kept", sdk_server.url)
        session = await open_session(http, url)
        mongo_server.kill()
        try:
            # fast, as the 3 s server-selection timeout means (a functional bound, not a benchmark:
            # an overall client timeout used to stretch it to 10 s)
            for base, path, body in (
                (stack.gateway_url, f"/gateways/{gid}/targets/{target['targetId']}", None),
                (stack.identity_url, "/identities/ListWorkloadIdentities", {}),
            ):
                started = time.monotonic()
                if body is None:
                    r = await http.get(base + path, headers=stack.admin_headers)
                else:
                    r = await http.post(base + path, json=body, headers=stack.admin_headers)
                assert r.status_code == 503 and "database" in r.json()["error"]["message"], r.text
                assert time.monotonic() - started < 6, path
            assert len((await rpc(http, url, session, "tools/list"))["result"]["tools"]) >= 5
            called = await rpc(
                http, url, session, "tools/call", {"name": "kept___add", "arguments": {"a": 1, "b": 2}}
            )
            assert called["result"]["content"][0]["text"] == "3"
            # the gateway serves MCP, so it is ready (and says MongoDB is down); the admin API is not
            ready = await http.get(f"{stack.gateway_url}/readyz")
            assert ready.status_code == 200 and ready.json() == {
                "serving": True,
                "nats": True,
                "mongodb": False,
            }
        finally:
            mongo_server.start()
            mongo_server.wait_port()
        await _ready(stack)
        assert (await admin.target(gid, target["targetId"]))["status"] == "READY"
        await admin.ready_target(gid, "fresh", sdk_server.url)
