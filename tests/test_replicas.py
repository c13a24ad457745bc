"""Gateway replicas: the same catalog everywhere, a session started on one works on another, and a
session ended on one is ended on all, also on replicas started later."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from admin import Admin, target_body
from rawmcp import open_session, post, rpc


async def test_two_gateways_share_catalog_and_sessions(stack: Any, sdk_server: Any) -> None:
    replica = stack.start_gateway_replica()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        target = await admin.ready_target(gid, "shared", sdk_server.url)
        url_a = gateway["gatewayUrl"]
        url_b = f"{replica.url}/gateways/{gid}/mcp"
        async with httpx.AsyncClient() as http:
            session = await open_session(http, url_a)
            list_a = await rpc(http, url_a, session, "tools/list")
            list_b = await rpc(http, url_b, session, "tools/list")
            assert list_a["result"] == list_b["result"] and list_a["result"]["tools"]
            called = await rpc(
                http, url_b, session, "tools/call", {"name": "shared___echo", "arguments": {"text": "from b"}}
            )
            assert called["result"]["content"][0]["text"] == "from b"

            # a change made through A reaches B's catalog by event
            await admin.create_target(
                gid,
                target_body(
                    "inline",
                    sdk_server.url,
                    inline_tools=[{"name": "only", "inputSchema": {"type": "object"}}],
                ),
            )
            for _ in range(50):
                names = [
                    t["name"] for t in (await rpc(http, url_b, session, "tools/list"))["result"]["tools"]
                ]
                if "inline___only" in names:
                    break
                await asyncio.sleep(0.1)
            assert "inline___only" in names

            # a session ended on A is ended on B too
            assert (await http.delete(url_a, headers={"Mcp-Session-Id": session})).status_code == 204
            for _ in range(50):
                r = await post(http, url_b, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session=session)
                if r.status_code == 404:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 404

            # ... and on a replica started afterwards, which never saw the broadcast
            late = stack.start_gateway_replica()
            url_c = f"{late.url}/gateways/{gid}/mcp"
            r = await post(http, url_c, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session=session)
            assert r.status_code == 404, r.text
            other = await open_session(http, url_a)  # a live session still works there
            assert (await rpc(http, url_c, other, "ping"))["result"] == {}
        await admin.http.delete(f"/gateways/{gid}/targets/{target['targetId']}")
