"""MCP 2026-07-28 beside 2025-11-25 on the same endpoint (issue 13, items 1-4).

The SDK client in its default ``auto`` mode lands on 2026-07-28 and ``mode="legacy"`` on today's
path; the wire rules (versions, envelope, mirrored headers, unknown methods) answer as the spec
says; a user's consent is a multi-round-trip request: ``input_required`` with identity's URL, the
person in headless Chromium, the retry waiting for ``identity.token_issued``, the token reaching the
target. A forged, foreign or altered ``requestState`` is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import browser
import httpx
import pytest
import test_user_auth
from admin import Admin, target_body
from harness import mcp_client
from mcp import MCPError
from mcp import types as mcp_types
from rawmcp import MODERN, modern_post, modern_request, post
from test_user_auth import World, _complete, _consent

needs_chromium = pytest.mark.skipif(
    not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
)
world = test_user_auth.world  # its fixture: a JWT gateway, the IdP, an upstream checking the IdP's tokens
CONSENT = "gatehouse/consent"
URL_ELICITATION = {"elicitation": {"url": {}}}


async def _open_gateway(stack: Any, sdk_server: Any, **inline: Any) -> dict[str, Any]:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.ready_target(gateway["gatewayId"], "sdk", sdk_server.url)
        if inline:
            created = await admin.create_target(
                gateway["gatewayId"], target_body("inline", sdk_server.url, inline_tools=inline["tools"])
            )
            assert created["status"] == "READY"
            await admin.wait_served(gateway["gatewayId"], "inline")
    return gateway


async def test_sdk_client_auto_lands_on_2026_and_legacy_keeps_todays_path(
    stack: Any, sdk_server: Any
) -> None:
    gateway = await _open_gateway(stack, sdk_server)
    answers = {}
    for mode, era in (("auto", MODERN), ("legacy", "2025-11-25")):
        async with mcp_client(gateway["gatewayUrl"], mode=mode) as client:
            assert client.protocol_version == era
            names = [t.name for t in (await client.list_tools()).tools]
            assert "sdk___add" in names  # in a fixed order: by target name, then the target's own
            assert [t.name for t in (await client.list_tools()).tools] == names
            result = await client.call_tool("sdk___add", {"a": 20, "b": 22})
            assert not result.is_error
            answers[mode] = (names, result.content)
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("sdk___nope", {})
            assert unknown.value.error.code == -32602
    assert answers["auto"] == answers["legacy"]


async def test_the_wire_of_2026(stack: Any, sdk_server: Any) -> None:
    tool = {
        "name": "echo",
        "description": "Echo it",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string", "x-mcp-header": "Text"}}},
    }
    gateway = await _open_gateway(stack, sdk_server, tools=[tool])
    url = gateway["gatewayUrl"]
    async with httpx.AsyncClient() as http:
        # server/discover from memory, with both eras and cache hints
        r = await modern_post(http, url, modern_request("server/discover"))
        assert r.status_code == 200 and "mcp-session-id" not in r.headers
        found = r.json()["result"]
        assert found["resultType"] == "complete"
        assert found["supportedVersions"][0] == MODERN and "2025-11-25" in found["supportedVersions"]
        assert found["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "gatehouse"
        assert (found["ttlMs"], found["cacheScope"]) == (2000, "public")  # an open gateway: same for all
        # tools/list: the same tools as the legacy era, cache hints, "" is the start of the list
        listed = (await modern_post(http, url, modern_request("tools/list"))).json()["result"]
        assert listed["resultType"] == "complete" and listed["cacheScope"] == "public"
        assert "_meta" in listed and "nextCursor" not in listed
        again = (await modern_post(http, url, modern_request("tools/list", {"cursor": ""}))).json()["result"]
        assert again["tools"] == listed["tools"]
        bad_cursor = await modern_post(http, url, modern_request("tools/list", {"cursor": "forged.x"}))
        assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["code"] == -32602
        # tools/call, with Mcp-Name plain or base64, and the Mcp-Param-* of an x-mcp-header parameter
        call = modern_request("tools/call", {"name": "inline___echo", "arguments": {"text": "héllo"}})
        encoded = "=?base64?" + base64.b64encode("héllo".encode()).decode() + "?="
        r = await modern_post(http, url, call, {"Mcp-Param-Text": encoded})
        assert r.status_code == 200, r.text
        assert r.json()["result"]["content"][0]["text"] == "héllo"
        assert r.json()["result"]["resultType"] == "complete"
        name64 = "=?base64?" + base64.b64encode(b"inline___echo").decode() + "?="
        r = await modern_post(http, url, call, {"Mcp-Name": name64, "Mcp-Param-Text": encoded})
        assert r.status_code == 200, r.text
        # header mismatches: 400 -32020
        for change in (
            {"Mcp-Param-Text": "hello"},  # not what the body says
            {"Mcp-Param-Text": None},  # missing for a present argument
            {"Mcp-Name": "sdk___echo", "Mcp-Param-Text": encoded},
            {"Mcp-Name": None, "Mcp-Param-Text": encoded},
            {"Mcp-Method": "tools/list", "Mcp-Param-Text": encoded},
        ):
            r = await modern_post(http, url, call, change)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32020, (change, r.text)
            assert r.json()["id"] == call["id"]
        body = modern_request("tools/list")
        body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2025-11-25"
        r = await modern_post(http, url, body)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32020
        # the envelope is required: 400 -32602
        for key in ("io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities"):
            body = modern_request("tools/list")
            del body["params"]["_meta"][key]
            r = await modern_post(http, url, body)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32602 and key in r.text
        # an unknown method: 404 -32601 (ping is gone in 2026-07-28)
        r = await modern_post(http, url, modern_request("ping"))
        assert r.status_code == 404 and r.json()["error"]["code"] == -32601
        # an unknown version: 400 -32022 naming both eras
        r = await modern_post(http, url, modern_request("tools/list"), {"MCP-Protocol-Version": "2099-01-01"})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32022
        assert {MODERN, "2025-11-25"} <= set(r.json()["error"]["data"]["supported"])
        # POST only; no session is minted or needed
        r = await http.get(url, headers={"MCP-Protocol-Version": MODERN, "Accept": "text/event-stream"})
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        # the legacy path is as it was: no header means initialize and sessions
        r = await post(http, url, modern_request("tools/list"))
        assert r.status_code == 400 and "Mcp-Session-Id" in r.text


# -- consent as a multi-round-trip request ------------------------------------------------------


async def _user_target(w: World, name: str) -> None:
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(w.gateway["gatewayId"], w.target_body(name, inline=True))


async def _consent_and_complete(w: World, url: str, user: str, jwt: str) -> None:
    """The person: logs in and consents in Chromium; their app completes the session."""
    session_uri = await _consent(url, user, w.oidc)
    assert (await _complete(w, session_uri, user_token=jwt)).status_code == 200


@needs_chromium
async def test_sdk_client_consents_in_one_call(world: World) -> None:
    """The SDK client in auto mode: tools/call -> input_required (identity's URL), the person consents
    in the browser while the retry waits for identity.token_issued, the result arrives on that call."""
    w = world
    await _user_target(w, "mrtr")
    jwt = w.user_jwt("U1")
    asked: list[mcp_types.ElicitRequestURLParams] = []
    person: list[asyncio.Task[None]] = []

    async def on_elicit(context: Any, params: Any) -> mcp_types.ElicitResult:
        asked.append(params)
        # the user agrees and goes to the browser; the client retries at once
        person.append(asyncio.create_task(_consent_and_complete(w, params.url, "U1", jwt)))
        return mcp_types.ElicitResult(action="accept")

    async with mcp_client(
        w.gateway["gatewayUrl"], headers={"Authorization": f"Bearer {jwt}"}, elicitation_callback=on_elicit
    ) as client:
        assert client.protocol_version == MODERN
        result = await client.call_tool("mrtr___whoami", {})
        assert json.loads(result.content[0].text)["sub"] == "U1"  # the user's own token reached the target
        assert len(asked) == 1 and asked[0].mode == "url"
        assert asked[0].url.startswith(f"{w.stack.identity_url}/identities/oauth2/authorize?request_uri=")
        await person[0]
        # the token is kept: the next call asks nobody
        result = await client.call_tool("mrtr___whoami", {})
        assert json.loads(result.content[0].text)["sub"] == "U1" and len(asked) == 1
    # a client that cannot open URLs is told which capability it lacks
    async with mcp_client(
        w.gateway["gatewayUrl"], headers={"Authorization": f"Bearer {w.user_jwt('U2')}"}
    ) as bare:
        with pytest.raises(MCPError) as missing:
            await bare.call_tool("mrtr___whoami", {})
        assert missing.value.error.code == -32021
        assert missing.value.error.data == {"requiredCapabilities": URL_ELICITATION}


async def _call(
    http: httpx.AsyncClient,
    w: World,
    jwt: str,
    tool: str,
    extra: dict[str, Any] | None = None,
    args: Any = None,
) -> httpx.Response:
    body = modern_request(
        "tools/call", {"name": tool, "arguments": args or {}, **(extra or {})}, capabilities=URL_ELICITATION
    )
    return await modern_post(http, w.gateway["gatewayUrl"], body, {"Authorization": f"Bearer {jwt}"})


@needs_chromium
async def test_request_state_attacks_change_nothing_and_the_retry_waits(world: World) -> None:
    w = world
    await _user_target(w, "state")
    tool = "state___whoami"
    u3, u4 = w.user_jwt("U3"), w.user_jwt("U4")
    async with httpx.AsyncClient(timeout=60) as http:
        first = (await _call(http, w, u3, tool)).json()["result"]
        assert first["resultType"] == "input_required" and "_meta" in first
        assert "ttlMs" not in first  # interim results carry no cache hints
        ((key, asked),) = first["inputRequests"].items()
        assert key == CONSENT and asked["method"] == "elicitation/create"
        assert asked["params"]["mode"] == "url" and "elicitationId" not in asked["params"]
        url, state = asked["params"]["url"], first["requestState"]
        accept = {"inputResponses": {CONSENT: {"action": "accept"}}}
        payload, _, signature = state.partition(".")
        forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
        for jwt, extra, args in (
            (u3, {"requestState": forged}, None),  # altered
            (u3, {"requestState": "x" + state}, None),  # not ours
            (u3, {"requestState": state}, {"other": 1}),  # other arguments
            (u4, {"requestState": state}, None),  # another user's
        ):
            r = await _call(http, w, jwt, tool, {**extra, **accept}, args)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32602, r.text
            assert "requestState" in r.json()["error"]["message"]
        r = await _call(http, w, u3, tool, {"requestState": state})
        assert r.json()["result"]["resultType"] == "input_required"  # no answer yet: asked again, same URL
        assert r.json()["result"]["inputRequests"][CONSENT]["params"]["url"] == url
        # decline: an error result, nothing called
        r = await _call(
            http, w, u3, tool, {"requestState": state, "inputResponses": {CONSENT: {"action": "decline"}}}
        )
        declined = r.json()["result"]
        assert declined["isError"] is True and declined["resultType"] == "complete"
        # the legitimate retry: accepted while the person is still in the browser; it waits (SSE
        # comment lines) for identity.token_issued, then answers on the same request
        body = modern_request(
            "tools/call",
            {"name": tool, "arguments": {}, "requestState": state, **accept},
            capabilities=URL_ELICITATION,
        )
        headers = {
            "Authorization": f"Bearer {u3}",
            "MCP-Protocol-Version": MODERN,
            "Mcp-Method": "tools/call",
            "Mcp-Name": tool,
            "Accept": "application/json, text/event-stream",
        }
        async with http.stream("POST", w.gateway["gatewayUrl"], json=body, headers=headers) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(": waiting")
            person = asyncio.create_task(_consent_and_complete(w, url, "U3", u3))
            data = [line async for line in lines if line.startswith("data: ")]
            await person
        result = json.loads(data[0].removeprefix("data: "))["result"]
        assert json.loads(result["content"][0]["text"])["sub"] == "U3"
        # U4 gained nothing from the attempts with U3's state
        assert (await _call(http, w, u4, tool)).json()["result"]["resultType"] == "input_required"


# -- subscriptions/listen ---------------------------------------------------------------------------


async def test_a_listener_sees_tools_list_changed_within_a_second(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        async with mcp_client(gateway["gatewayUrl"]) as client:
            assert client.server_capabilities.tools and client.server_capabilities.tools.list_changed
            async with client.listen(tools_list_changed=True) as sub:
                assert sub.honored and sub.honored.tools_list_changed
                events = aiter(sub)
                # a target with its tools given: READY when the admin API answers
                created = await admin.create_target(
                    gid,
                    target_body(
                        "given",
                        sdk_server.url,
                        inline_tools=[{"name": "echo", "inputSchema": {"type": "object"}}],
                    ),
                )
                ready_at = asyncio.get_running_loop().time()
                assert created["status"] == "READY"
                await asyncio.wait_for(anext(events), 5)
                assert asyncio.get_running_loop().time() - ready_at < 1.0
                assert "given___echo" in [t.name for t in (await client.list_tools()).tools]
                # a synced one: READY once the sync-worker listed its tools; the event follows at once
                synced = await admin.create_target(gid, target_body("synced", sdk_server.url))
                await asyncio.wait_for(anext(events), 30)
                seen_at = asyncio.get_running_loop().time()
                status = await admin.target(gid, synced["targetId"])
                assert status["status"] == "READY", status
                assert "synced___add" in [t.name for t in (await client.list_tools()).tools]
                assert asyncio.get_running_loop().time() - seen_at < 1.0
    # the wire: the acknowledgment first, the subscription id on every message, keep-alives between
    body = modern_request(
        "subscriptions/listen", {"notifications": {"toolsListChanged": True, "promptsListChanged": True}}
    )
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "subscriptions/listen"}
    async with httpx.AsyncClient(timeout=30) as http, Admin(stack.gateway_url, stack.admin_headers) as admin:
        async with http.stream(
            "POST",
            gateway["gatewayUrl"],
            json=body,
            headers={**headers, "Accept": "application/json, text/event-stream"},
        ) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            messages = (
                json.loads(line[6:]) async for line in stream.aiter_lines() if line.startswith("data: ")
            )
            ack = await anext(messages)
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            assert ack["params"]["notifications"] == {"toolsListChanged": True}  # prompts: not served
            assert ack["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": body["id"]}
            r = await admin.http.delete(f"/gateways/{gid}/targets/{created['targetId']}")
            assert r.status_code == 202
            changed = await asyncio.wait_for(anext(messages), 5)
            assert changed["method"] == "notifications/tools/list_changed"
            assert changed["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": body["id"]}
        r = await post(http, gateway["gatewayUrl"], body, headers={**headers, "Accept": "application/json"})
        assert r.status_code == 406
