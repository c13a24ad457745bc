"""Nothing a caller sends grows the gateway's or identity's memory, or the audit trail, without bound:
forged tools/list cursors, session churn, many upstream sessions, huge or hanging targets,
anonymous misses. Each test attacks a running process and shows the legitimate flow still works."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import harness
import httpx
import nats
from admin import Admin, target_body
from rawmcp import open_session, post, rpc

from gatehouse_contracts.events import decode_event


def rss_bytes(proc: harness.Proc) -> int:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def call(
    http: httpx.AsyncClient, url: str, session: str, tool: str, **arguments: Any
) -> dict[str, Any]:
    return await rpc(http, url, session, "tools/call", {"name": tool, "arguments": arguments})


async def test_forged_tools_list_cursors_are_refused_and_grow_nothing(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(extra_tools=1000)
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        other = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "sdk", upstream.url)
    paged = stack.start_gateway_replica(GATEWAY_TOOLS_PAGE_SIZE="300")  # loads the catalog at start
    url = f"{paged.url}/gateways/{gw['gatewayId']}/mcp"
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)

        async def all_pages() -> tuple[list[str], list[str]]:
            names: list[str] = []
            cursors: list[str] = []
            answer = await rpc(http, url, session, "tools/list")
            while True:
                names += [t["name"] for t in answer["result"]["tools"]]
                cursor = answer["result"].get("nextCursor")
                if cursor is None:
                    return names, cursors
                cursors.append(cursor)
                answer = await rpc(http, url, session, "tools/list", {"cursor": cursor})

        names, cursors = await all_pages()
        assert len(names) == len(set(names)) == 1005 and len(cursors) == 3  # 1,000 generated + 5
        before = rss_bytes(paged)
        # cursors of the old unsigned shape for every position, tampered, foreign and junk ones:
        # before, each distinct position kept its own encoded page (here up to 300 tools, ~40 KB)
        forged = [base64.urlsafe_b64encode(json.dumps(["sdk", i]).encode()).decode() for i in range(1000)]
        forged += [cursors[0][:-3] + "AAA", cursors[0].split(".")[0] + ".", "é" * 10, "x" * 5000]
        other_url = f"{paged.url}/gateways/{other['gatewayId']}/mcp"
        other_session = await open_session(http, other_url)
        for cursor in forged:
            answer = await rpc(http, url, session, "tools/list", {"cursor": cursor})
            assert answer["error"]["code"] == -32602 and "unknown cursor" in answer["error"]["message"]
        # a genuine cursor of one gateway is foreign to another
        foreign = await rpc(http, other_url, other_session, "tools/list", {"cursor": cursors[0]})
        assert foreign["error"]["code"] == -32602
        grown = rss_bytes(paged) - before
        assert grown < 8 * 1024 * 1024, f"the gateway grew by {grown} bytes"
        assert await all_pages() == (names, cursors)
        # any replica serves the cursors another issued (same secret); the primary pages by 10,000
        rest = await rpc(http, gw["gatewayUrl"], session, "tools/list", {"cursor": cursors[0]})
        assert [t["name"] for t in rest["result"]["tools"]] == names[300:]


async def test_ending_sessions_in_a_loop_stops_at_the_cap(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        second = await admin.create_gateway()
    capped = stack.start_gateway_replica(GATEWAY_MAX_ENDED_SESSIONS_PER_USER="5")
    url = f"{capped.url}/gateways/{gw['gatewayId']}/mcp"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient() as http:
        ended = []
        for _ in range(5):
            session = await open_session(http, url)
            assert (await http.delete(url, headers={"Mcp-Session-Id": session})).status_code == 204
            ended.append(session)
        session = await open_session(http, url)
        r = await http.delete(url, headers={"Mcp-Session-Id": session})
        assert r.status_code == 429 and "ended too many sessions" in r.json()["error"]["message"]
        assert (await post(http, url, ping, session=session)).status_code == 200  # not ended
        for old in ended:
            assert (await post(http, url, ping, session=old)).status_code == 404  # still ended
        # the cap is per gateway and user: another gateway's callers are not held up
        other = f"{capped.url}/gateways/{second['gatewayId']}/mcp"
        session = await open_session(http, other)
        assert (await http.delete(other, headers={"Mcp-Session-Id": session})).status_code == 204


async def test_upstream_sessions_are_bounded_and_an_active_one_is_kept(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(era="legacy")  # a handshake-era target: sessions to count
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        for name in ("one", "two", "three"):
            await admin.ready_target(gw["gatewayId"], name, upstream.url)
    pool = stack.start_gateway_replica(GATEWAY_MAX_UPSTREAM_SESSIONS="2")
    url = f"{pool.url}/gateways/{gw['gatewayId']}/mcp"
    stats = upstream.url.replace("/mcp", "/stats")
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)
        initialized = (await http.get(stats)).json()["initialize"]
        slow = asyncio.create_task(call(http, url, session, "one___slow", seconds=2))
        for _ in range(3):  # two, three, two, three...: the pool holds two sessions, "one" is busy
            for name in ("two", "three"):
                answer = await call(http, url, session, f"{name}___echo", text=name)
                assert answer["result"]["content"][0]["text"] == name
        assert not slow.done()
        assert (await slow)["result"]["content"][0]["text"] == "done"  # its session was not closed
        opened = (await http.get(stats)).json()["initialize"] - initialized
        # one, two, three, then "two" and "three" again each time the other pushed it out
        assert opened >= 5, opened


async def test_a_huge_answer_fails_naming_the_target(stack: Any, upstreams: Any) -> None:
    sse, plain = upstreams.sdk(), upstreams.sdk(json_response=True)
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "sse", sse.url)
        await admin.ready_target(gw["gatewayId"], "plain", plain.url)
    limited = stack.start_gateway_replica(GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES="100000")
    url = f"{limited.url}/gateways/{gw['gatewayId']}/mcp"
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)
        for target in ("sse", "plain"):  # a chunked event stream, and a body with Content-Length
            huge = await call(http, url, session, f"{target}___echo", text="x" * 200_000)
            assert huge["error"]["code"] == -32001, huge
            assert huge["error"]["data"] == {"target": target}
            assert "larger than 100000 bytes" in huge["error"]["message"]
            small = await call(http, url, session, f"{target}___echo", text="y" * 20_000)
            assert small.get("result", {}).get("content", [{}])[0].get("text") == "y" * 20_000, small


async def test_a_hanging_target_cannot_take_every_connection(stack: Any, upstreams: Any) -> None:
    hanging, open_ = upstreams.sdk(), upstreams.sdk()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gw = await admin.create_gateway()
        await admin.ready_target(gw["gatewayId"], "hanging", hanging.url)
        await admin.ready_target(gw["gatewayId"], "open", open_.url)
    # four connections in all, two per target: without the per-target limit the hanging target's
    # calls would hold all four and the open target's calls would wait for them
    small = stack.start_gateway_replica(
        GATEWAY_MAX_CONNECTIONS="4",
        GATEWAY_MAX_CONNECTIONS_PER_TARGET="2",
        GATEWAY_UPSTREAM_TIMEOUT_SECONDS="20",
    )
    url = f"{small.url}/gateways/{gw['gatewayId']}/mcp"
    async with httpx.AsyncClient(timeout=60) as http:
        session = await open_session(http, url)
        assert (await call(http, url, session, "open___echo", text="warm"))["result"]
        assert (await call(http, url, session, "hanging___echo", text="warm"))["result"]
        stuck = [asyncio.create_task(call(http, url, session, "hanging___slow", seconds=3)) for _ in range(6)]
        await asyncio.sleep(0.5)
        # calls at once: they need connections beyond the one kept alive from the warm-up
        answers = await asyncio.gather(
            *(call(http, url, session, "open___echo", text=str(i)) for i in range(4))
        )
        assert [a["result"]["content"][0]["text"] for a in answers] == ["0", "1", "2", "3"]
        assert not any(task.done() for task in stuck)
        for answer in await asyncio.gather(*stuck):
            assert answer["result"]["content"][0]["text"] == "done"  # queued, then served


async def test_anonymous_misses_are_counted_not_each_published(stack: Any) -> None:
    identity = harness.start_service(
        "identity", {**stack.env, "IDENTITY_MISS_EVENTS_INTERVAL_SECONDS": "2"}, label="identity-misses"
    )
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    events: asyncio.Queue[Any] = asyncio.Queue()

    async def received(msg: Any) -> None:
        await events.put(decode_event(msg.data))

    try:
        await nc.subscribe("gatehouse.events.identity.authorization_failed", cb=received)
        await nc.flush()
        async with httpx.AsyncClient(base_url=identity.url) as http:
            for i in range(50):
                r = await http.get(f"/identities/oauth2/callback/nope?code=c&state=forged-{i}")
                assert r.status_code == 400
        first = await asyncio.wait_for(events.get(), 10)
        assert (first.reason, first.count) == ("unknown_session", 1)
        summary = await asyncio.wait_for(events.get(), 10)  # when the 2-second interval ends
        assert (summary.reason, summary.count, summary.session_uri) == ("unknown_session", 49, "")
        assert events.empty()
    finally:
        await nc.close()
        identity.stop()


async def test_a_huge_tools_list_page_fails_the_sync(stack: Any, upstreams: Any, sdk_server: Any) -> None:
    huge = upstreams.sdk(extra_tools=1000)  # one tools/list page of ~150 KB
    stack.sync_worker.stop()  # the only sync-worker while this test runs: the one with the limit
    limited = stack.start_sync_worker_replica(SYNC_MAX_RESPONSE_BYTES="50000")
    try:
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            gw = await admin.create_gateway()
            created = await admin.create_target(gw["gatewayId"], target_body("huge", huge.url))
            target = await admin.wait_status(gw["gatewayId"], created["targetId"])
            assert target["status"] == "FAILED", target
            assert "Answer too large" in target["statusReasons"][0]
            assert "larger than 50000 bytes" in target["statusReasons"][0]
            await admin.ready_target(gw["gatewayId"], "small", sdk_server.url)
    finally:
        limited.stop()
        stack.sync_workers.remove(limited)
        stack.sync_worker.start().wait_ready()
