"""A tools/call through the gateway while it runs (issue 13, items 6 and 7's pass-through).

Progress: a client that sent a progressToken and accepts SSE gets the target's progress on its
call's own SSE answer, in both eras, with its own token; without one the answer is JSON as ever.
Cancellation: a 2026-07-28 client that closes the stream cancels the call at the target; a
2025-11-25 client sends notifications/cancelled (its era does not take a disconnect for one). The
SDK test server's `steps` tool counts its cancellations (GET /stats). A target's own request for
input (`confirm`, 2026-07-28 input_required; `visit`, a 2025-11-25 target's -32042) reaches a
2026-07-28 client as input_required, its state sealed in the gateway's, and the retry finishes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from admin import Admin
from harness import mcp_client
from mcp import types as mcp_types
from rawmcp import MODERN, modern_headers, modern_post, modern_request, open_session, post

ELICITATION = {"elicitation": {"form": {}, "url": {}}}


async def _gateway(stack: Any, servers: dict[str, Any]) -> str:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        for name, server in servers.items():
            await admin.ready_target(gateway["gatewayId"], name, server.url)
    return str(gateway["gatewayUrl"])


async def _cancelled(server: Any, at_least: int) -> None:
    """Until the server counted ``at_least`` cancelled `steps` calls (10 s at most)."""
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            if (await http.get(server.url.replace("/mcp", "/stats"))).json()["cancelled"] >= at_least:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the target did not see the call cancelled")


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def _first_progress(lines: Any) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data:"):
            return json.loads(line[5:])  # type: ignore[no-any-return]
    raise AssertionError("the stream ended without a message")


@pytest.mark.parametrize("era", ["modern", "legacy"])
async def test_progress_streams_and_a_modern_disconnect_cancels(stack: Any, upstreams: Any, era: str) -> None:
    server = upstreams.sdk(era=era, interactive_tools=True)
    url = await _gateway(stack, {"t": server})
    steps = {"name": "t___steps", "arguments": {"steps": 3, "seconds": 0.01}}
    async with httpx.AsyncClient(timeout=30) as http:
        # 2026-07-28: progress on the call's SSE answer, with the client's own token, then the result
        body = modern_request("tools/call", {**steps, "_meta": {"progressToken": "mine"}})
        body["params"]["_meta"]["progressToken"] = "mine"
        r = await modern_post(http, url, body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
        *progress, answer = _events(r.text)
        assert [(p["params"]["progressToken"], p["params"]["progress"]) for p in progress] == [
            ("mine", 1),
            ("mine", 2),
            ("mine", 3),
        ]
        assert answer["id"] == body["id"] and answer["result"]["content"][0]["text"] == "done"
        assert answer["result"]["resultType"] == "complete"
        # no token: the same call answers JSON
        plain = modern_request("tools/call", steps)
        r = await modern_post(http, url, plain)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["result"]["content"][0]["text"] == "done"

        # 2026-07-28: the client closes the stream mid-call; the target's tool is cancelled
        long = modern_request(
            "tools/call",
            {"name": "t___steps", "arguments": {"steps": 600, "seconds": 0.1}, "_meta": {}},
        )
        long["params"]["_meta"]["progressToken"] = 7
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        async with http.stream("POST", url, json=long, headers={**headers, **modern_headers(long)}) as s:
            first = await _first_progress(s.aiter_lines())
            assert first["params"]["progressToken"] == 7
        await _cancelled(server, 1)

        # 2025-11-25: progress the same way; notifications/cancelled cancels the call (-32800)
        session = await open_session(http, url)
        call = {"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {**steps}}
        call["params"]["_meta"] = {"progressToken": "old"}
        r = await post(http, url, call, session=session)
        *progress, answer = _events(r.text)
        assert [p["params"]["progressToken"] for p in progress] == ["old"] * 3
        assert answer["result"]["content"][0]["text"] == "done"
        call["params"]["arguments"] = {"steps": 600, "seconds": 0.1}
        sse = {**headers, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        async with http.stream("POST", url, json=call, headers=sse) as s:
            lines = s.aiter_lines()
            await _first_progress(lines)
            cancel = {"method": "notifications/cancelled", "params": {"requestId": 41, "reason": "enough"}}
            r = await post(http, url, {"jsonrpc": "2.0", **cancel}, session=session)
            assert r.status_code == 202
            rest = [json.loads(line[5:]) async for line in lines if line.startswith("data:")]
        assert rest[-1] == {
            "jsonrpc": "2.0",
            "id": 41,
            "error": {"code": -32800, "message": "Request cancelled"},
        }
        await _cancelled(server, 2)
        # a cancellation naming nothing in flight changes nothing
        r = await post(http, url, {"jsonrpc": "2.0", **cancel}, session=session)
        assert r.status_code == 202
        again = {"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": steps}
        assert (await post(http, url, again, session=session)).json()["result"]["content"][0][
            "text"
        ] == "done"


async def test_a_cancellation_reaching_another_replica_cancels_the_call(stack: Any, upstreams: Any) -> None:
    """Replicas behind one address: the 2025-11-25 notifications/cancelled may reach a replica that
    does not run the call. It tells the others over the bus, and the one running it cancels it at
    the target and answers -32800, as if the notification had reached it."""
    server = upstreams.sdk(era="legacy", interactive_tools=True)
    url = await _gateway(stack, {"t": server})
    other = stack.start_gateway_replica()
    url_b = f"{other.url}{urlsplit(url).path}"
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)
        before = (await http.get(server.url.replace("/mcp", "/stats"))).json()["cancelled"]
        steps = {
            "name": "t___steps",
            "arguments": {"steps": 600, "seconds": 0.1},
            "_meta": {"progressToken": 1},
        }
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": steps}
        sse = {**headers, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        async with http.stream("POST", url, json=call, headers=sse) as s:
            lines = s.aiter_lines()
            await _first_progress(lines)  # the call runs on the first replica
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
            # another session naming the same request id cancels nothing: the call goes on
            stranger = await open_session(http, url)
            assert (await post(http, url_b, cancel, session=stranger)).status_code == 202
            for _ in range(3):
                assert (await _first_progress(lines))["method"] == "notifications/progress"
            r = await post(http, url_b, cancel, session=session)  # ... and the cancellation reaches B
            assert r.status_code == 202, r.text
            rest = [json.loads(line[5:]) async for line in lines if line.startswith("data:")]
        assert rest[-1] == {
            "jsonrpc": "2.0",
            "id": 7,
            "error": {"code": -32800, "message": "Request cancelled"},
        }
        await _cancelled(server, before + 1)
        # the session goes on, on either replica
        call = {
            "jsonrpc": "2.0",
            "id": 8,
            "method": "tools/call",
            "params": {"name": "t___steps", "arguments": {"steps": 1, "seconds": 0.01}},
        }
        for target_url in (url, url_b):
            assert (await post(http, target_url, call, session=session)).json()["result"]["content"][0][
                "text"
            ] == "done"


async def test_a_targets_own_request_for_input_reaches_a_2026_client(stack: Any, upstreams: Any) -> None:
    modern = upstreams.sdk(era="modern", interactive_tools=True)
    legacy = upstreams.sdk(era="legacy", interactive_tools=True)
    url = await _gateway(stack, {"m": modern, "l": legacy})
    asked: list[Any] = []

    async def elicitation(context: Any, params: Any) -> mcp_types.ElicitResult:
        asked.append(params)
        return mcp_types.ElicitResult(action="accept", content={})

    # the SDK client (auto: 2026-07-28) answers the target's form elicitation through the gateway
    async with mcp_client(url, elicitation_callback=elicitation) as client:
        assert client.protocol_version == MODERN
        result = await client.call_tool("m___confirm", {"text": "go"})
        assert not result.is_error and result.content[0].text == "confirmed: go", result
        assert asked[-1].message == "Confirm 'go'?"
        # a 2025-11-25 target's -32042 becomes a URL input request; accepted, the call is retried
        result = await client.call_tool("l___visit", {})
        assert not result.is_error and result.content[0].text == "visited", result
        assert asked[-1].mode == "url" and asked[-1].url == "https://example.invalid/visit"

    async with httpx.AsyncClient(timeout=30) as http:
        first = modern_request(
            "tools/call", {"name": "m___confirm", "arguments": {"text": "x"}}, capabilities=ELICITATION
        )
        r = await modern_post(http, url, first)
        ask = r.json()["result"]
        assert ask["resultType"] == "input_required" and list(ask["inputRequests"]) == ["confirm"]
        assert ask["requestState"] != "confirm-state"  # the target's, sealed inside the gateway's
        accept = {"confirm": {"action": "accept", "content": {}}}

        def retry(state: Any, arguments: Any = None) -> dict[str, Any]:
            params = {
                "name": "m___confirm",
                "arguments": arguments or {"text": "x"},
                "inputResponses": accept,
                "requestState": state,
            }
            return modern_request("tools/call", params, capabilities=ELICITATION)

        # a forged state, the target's bare one, or the state for other arguments: 400 -32602
        for bad in (
            retry("confirm-state"),
            retry(ask["requestState"] + "x"),
            retry(ask["requestState"], {"text": "y"}),
        ):
            r = await modern_post(http, url, bad)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32602, r.text
        r = await modern_post(http, url, retry(ask["requestState"]))
        assert r.json()["result"]["content"][0]["text"] == "confirmed: x", r.text
        # a client without elicitation.url is told what it lacks for the -32042 target
        r = await modern_post(http, url, modern_request("tools/call", {"name": "l___visit", "arguments": {}}))
        assert r.status_code == 400 and r.json()["error"]["code"] == -32021
        # (the visit tool asks on every odd call; the one above was its 3rd) a decline ends the call here
        visit = {"name": "l___visit", "arguments": {}}
        r = await modern_post(http, url, modern_request("tools/call", visit, capabilities=ELICITATION))
        assert r.json()["result"]["content"][0]["text"] == "visited", r.text  # its 4th call
        r = await modern_post(http, url, modern_request("tools/call", visit, capabilities=ELICITATION))
        ask = r.json()["result"]  # its 5th
        assert ask["resultType"] == "input_required" and list(ask["inputRequests"]) == ["visit-1"]
        declined = {
            **visit,
            "inputResponses": {"visit-1": {"action": "decline"}},
            "requestState": ask["requestState"],
        }
        r = await modern_post(http, url, modern_request("tools/call", declined, capabilities=ELICITATION))
        assert r.json()["result"]["isError"] and "decline" in r.json()["result"]["content"][0]["text"]
        stats = (await http.get(legacy.url.replace("/mcp", "/stats"))).json()
        assert stats["visit"] == 5  # not called again after the decline
