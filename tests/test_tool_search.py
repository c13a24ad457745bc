"""Tool search (issue 16): AgentCore's ``x_amz_bedrock_agentcore_search`` on gateways with
``protocolConfiguration.mcp.searchType: "SEMANTIC"``, through the MCP endpoint with the official SDK
client in both eras (``legacy``: 2025-11-25, ``auto``: 2026-07-28).

The search tool is listed only where searchType is set; it answers the expected tools, each exactly
as tools/list gives it; it follows a target being added, updated and deleted as soon as the admin
API answers; bad input is a tool error that names the fault; ``toolListMode: SEARCH_ONLY`` lists
only the search tool and the pinned tools while every tool can still be called.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from typing import Any

import harness
import httpx
import pytest
from admin import Admin, target_body
from harness import mcp_client
from mcp import MCPError
from rawmcp import open_session, rpc

SEARCH = "x_amz_bedrock_agentcore_search"
SEMANTIC = {"mcp": {"searchType": "SEMANTIC"}}
MODES = ["legacy", "auto"]


def _tool(name: str, description: str, **params: str) -> dict[str, Any]:
    properties = {p: {"type": "string", "description": d} for p, d in params.items()}
    return {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties},
    }


# realistic tools, the way public MCP servers name and describe them (never called: listed inline)
TRACKER = [
    _tool("create_issue", "Create a new issue in a project", project="Project key", summary="Issue title"),
    _tool("list_issues", "List issues of a project, filtered by status or assignee", project="Project key"),
    _tool(
        "transition_issue", "Move an issue to another status (To Do, In Progress, Done)", issue="Issue key"
    ),
    _tool("add_comment", "Add a comment to an issue", issue="Issue key", body="Comment text"),
]
CHAT = [
    _tool("send_message", "Post a message to a channel", channel="Channel name or id", text="Message text"),
    _tool("list_channels", "List the workspace's public channels"),
    _tool("search_messages", "Search messages across channels", query="Words to find"),
]
CALENDAR = [
    _tool("list_events", "List upcoming events of a calendar", calendar="Calendar id"),
    _tool("create_event", "Create a calendar event and invite attendees", title="Event title"),
    _tool("find_free_slots", "Find free/busy availability of attendees", attendees="Email addresses"),
]


async def _gateway(admin: Admin, sdk_server: Any, **fields: Any) -> dict[str, Any]:
    """A gateway with a synced SDK target ``sdk`` and three inline targets of realistic tools."""
    gateway = await admin.create_gateway(**fields)
    gid = gateway["gatewayId"]
    await admin.ready_target(gid, "sdk", sdk_server.url)
    for name, tools in (("jira", TRACKER), ("slack", CHAT), ("calendar", CALENDAR)):
        created = await admin.create_target(gid, target_body(name, sdk_server.url, inline_tools=tools))
        assert created["status"] == "READY", created
    return gateway


async def _search(client: Any, query: Any) -> list[dict[str, Any]]:
    result = await client.call_tool(SEARCH, {"query": query})
    assert not result.is_error, result
    assert json.loads(result.content[0].text) == result.structured_content
    tools: list[dict[str, Any]] = result.structured_content["tools"]
    return tools


async def _names(client: Any, query: str) -> list[str]:
    return [t["name"] for t in await _search(client, query)]


@pytest.mark.parametrize("mode", MODES)
async def test_search_tool_only_where_search_type_is_set(stack: Any, sdk_server: Any, mode: str) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        plain = await _gateway(admin, sdk_server)
        searching = await _gateway(admin, sdk_server, protocolConfiguration=SEMANTIC)
        rendered = (await admin.http.get(f"/gateways/{searching['gatewayId']}")).json()
    assert searching["protocolConfiguration"]["mcp"]["searchType"] == "SEMANTIC"
    assert rendered["protocolConfiguration"]["mcp"]["searchType"] == "SEMANTIC"
    assert "searchType" not in plain["protocolConfiguration"]["mcp"]

    async with mcp_client(plain["gatewayUrl"], mode=mode) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert SEARCH not in names and "jira___create_issue" in names
        with pytest.raises(MCPError) as unknown:
            await client.call_tool(SEARCH, {"query": "create an issue"})
        assert unknown.value.error.code == -32602

    async with mcp_client(searching["gatewayUrl"], mode=mode) as client:
        tools = (await client.list_tools()).tools
        assert tools[0].name == SEARCH and len(tools) == len(names) + 1
        assert tools[0].input_schema["required"] == ["query"]
        assert tools[0].input_schema["properties"]["query"]["type"] == "string"
        assert "most relevant first" in (tools[0].description or "")

        assert (await _names(client, "open a new bug ticket in jira"))[0] == "jira___create_issue"
        assert (await _names(client, "post a message to the team channel"))[0] == "slack___send_message"
        assert (await _names(client, "when is everyone available for a meeting"))[
            0
        ] == "calendar___find_free_slots"
        assert "jira___transition_issue" in (await _names(client, "move the ticket to done"))[:3]
        assert "sdk___add" in (await _names(client, "add two integers"))[:2]
        assert await _names(client, "xylophone quasar") == []
        assert len(await _names(client, "list create send find add")) == 10  # the documented limit

    # each found tool is exactly what tools/list gives (the raw JSON, not the SDK's model of it)
    async with httpx.AsyncClient(timeout=30) as http:
        url = searching["gatewayUrl"]
        session = await open_session(http, url)
        listed = {t["name"]: t for t in (await rpc(http, url, session, "tools/list"))["result"]["tools"]}
        found = await rpc(
            http, url, session, "tools/call", {"name": SEARCH, "arguments": {"query": "list jira issues"}}
        )
        tools = found["result"]["structuredContent"]["tools"]
        assert tools and all(tool == listed[tool["name"]] for tool in tools)
        assert (
            tools[0]
            == listed["jira___list_issues"]
            == {
                **TRACKER[1],
                "name": "jira___list_issues",
            }
        )


@pytest.mark.parametrize("mode", MODES)
async def test_search_follows_targets_added_updated_deleted(stack: Any, sdk_server: Any, mode: str) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await _gateway(admin, sdk_server, protocolConfiguration=SEMANTIC)
        gid = gateway["gatewayId"]
        async with mcp_client(gateway["gatewayUrl"], mode=mode) as client:
            query = "write a wiki page"
            assert not any(n.startswith("wiki___") for n in await _names(client, query))

            # added: searchable as soon as the admin API answered READY (no waiting)
            wiki = [
                _tool("create_page", "Create a page in a wiki space", space="Space key", title="Page title")
            ]
            created = await admin.create_target(gid, target_body("wiki", sdk_server.url, inline_tools=wiki))
            assert created["status"] == "READY"
            assert (await _names(client, query))[0] == "wiki___create_page"

            # updated: the new definition is what search answers, the old one is gone
            renamed = [_tool("publish_article", "Publish a wiki page to readers", space="Space key")]
            r = await admin.http.put(
                f"/gateways/{gid}/targets/{created['targetId']}",
                json=target_body("wiki", sdk_server.url, inline_tools=renamed),
            )
            assert r.status_code == 202, r.text
            found = await _search(client, query)
            assert found[0] == {**renamed[0], "name": "wiki___publish_article"}
            assert "wiki___create_page" not in [t["name"] for t in found]

            # deleted: not found any more
            r = await admin.http.delete(f"/gateways/{gid}/targets/{created['targetId']}")
            assert r.status_code == 202, r.text
            assert not any(n.startswith("wiki___") for n in await _names(client, query))

            # searchType removed by an update: the search tool goes; put back: it is there again
            body = {"name": gateway["name"]}
            assert (await admin.http.put(f"/gateways/{gid}", json=body)).status_code == 202
            assert SEARCH not in [t.name for t in (await client.list_tools()).tools]
            body["protocolConfiguration"] = SEMANTIC
            assert (await admin.http.put(f"/gateways/{gid}", json=body)).status_code == 202
            assert (await _names(client, "post a message to the team channel"))[0] == "slack___send_message"


@pytest.mark.parametrize("mode", MODES)
async def test_bad_queries_are_tool_errors_that_name_the_fault(
    stack: Any, sdk_server: Any, mode: str
) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await _gateway(admin, sdk_server, protocolConfiguration=SEMANTIC)
    async with mcp_client(gateway["gatewayUrl"], mode=mode) as client:
        await client.list_tools()  # the SDK validates arguments against the schema it listed, if any
        for arguments, fragment in (
            ({}, "non-empty string"),
            ({"query": ""}, "non-empty string"),
            ({"query": "   "}, "non-empty string"),
            ({"query": 42}, "non-empty string"),
            ({"query": "issue " * 200}, "the limit is 1000"),
        ):
            result = await client.call_tool(SEARCH, arguments)
            assert result.is_error, arguments
            assert fragment in result.content[0].text, result.content[0].text
        assert (await _names(client, "issue " * 160))[0].startswith("jira___")  # 960 characters: fine
    async with httpx.AsyncClient(timeout=30) as http:  # arguments that are not an object: the call's shape
        url = gateway["gatewayUrl"]
        session = await open_session(http, url)
        answer = await rpc(http, url, session, "tools/call", {"name": SEARCH, "arguments": ["issue"]})
        assert (
            answer["error"]["code"] == -32602 and "arguments must be an object" in answer["error"]["message"]
        )


@pytest.mark.parametrize("mode", MODES)
async def test_search_only_lists_search_and_pinned_tools_and_calls_reach_all(
    stack: Any, sdk_server: Any, mode: str
) -> None:
    search_only = {
        "mcp": {"searchType": "SEMANTIC", "toolListMode": "SEARCH_ONLY", "pinnedTools": ["sdk___echo"]}
    }
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await _gateway(admin, sdk_server, protocolConfiguration=search_only)
        assert gateway["protocolConfiguration"]["mcp"]["pinnedTools"] == ["sdk___echo"]
        async with mcp_client(gateway["gatewayUrl"], mode=mode) as client:
            assert [t.name for t in (await client.list_tools()).tools] == [SEARCH, "sdk___echo"]
            assert "sdk___add" in (await _names(client, "add two integers"))[:2]
            result = await client.call_tool("sdk___add", {"a": 20, "b": 22})  # listed or not: callable
            assert not result.is_error and "42" in result.content[0].text
            assert (await _names(client, "create an issue"))[0] == "jira___create_issue"

            # back to every tool listed
            body = {"name": gateway["name"], "protocolConfiguration": SEMANTIC}
            assert (await admin.http.put(f"/gateways/{gateway['gatewayId']}", json=body)).status_code == 202
            names = [t.name for t in (await client.list_tools()).tools]
            assert names[0] == SEARCH and {"sdk___add", "jira___create_issue"} <= set(names)


@pytest.mark.parametrize(
    ("mcp", "fragment"),
    [
        ({"searchType": "LEXICAL"}, 'searchType must be "SEMANTIC" or absent'),
        ({"searchType": 1}, "searchType"),
        ({"toolListMode": "SEARCH_ONLY"}, 'needs searchType "SEMANTIC"'),
        ({"searchType": "SEMANTIC", "toolListMode": "FEW"}, 'toolListMode must be "ALL" or "SEARCH_ONLY"'),
        ({"searchType": "SEMANTIC", "pinnedTools": ["sdk___echo"]}, 'only with toolListMode "SEARCH_ONLY"'),
        (
            {"searchType": "SEMANTIC", "toolListMode": "SEARCH_ONLY", "pinnedTools": ["echo"]},
            "<target>___<tool>",
        ),
    ],
)
async def test_bad_search_settings_are_refused_and_change_nothing(
    stack: Any, mcp: dict[str, Any], fragment: str
) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        body = {"name": gateway["name"], "protocolConfiguration": {"mcp": mcp}}
        r = await admin.http.post("/gateways", json={**body, "name": f"{gateway['name']}x"})
        assert r.status_code == 400 and fragment in r.json()["error"]["message"], r.text
        r = await admin.http.put(f"/gateways/{gateway['gatewayId']}", json=body)
        assert r.status_code == 400 and fragment in r.json()["error"]["message"], r.text
        after = (await admin.http.get(f"/gateways/{gateway['gatewayId']}")).json()
        assert after["protocolConfiguration"] == gateway["protocolConfiguration"]
        listed = await admin.http.get("/gateways", params={"maxResults": 1000})
        assert f"{gateway['name']}x" not in listed.text


async def test_another_replica_follows_by_the_catalog_events(stack: Any, sdk_server: Any) -> None:
    """Replica B learns of a target created and deleted through A from the catalog-change events
    (the same ones that update its tools/list), and its search follows."""
    replica = stack.start_gateway_replica()
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await _gateway(admin, sdk_server, protocolConfiguration=SEMANTIC)
        gid = gateway["gatewayId"]
        url_b = f"{replica.url}/gateways/{gid}/mcp"
        query = {"name": SEARCH, "arguments": {"query": "write a wiki page"}}

        async def found_on_b(present: bool) -> None:
            for _ in range(100):  # B's catalog lags A's by one event: wait for it (as test_replicas)
                answer = await rpc(http, url_b, session, "tools/call", query)
                names = [t["name"] for t in answer["result"]["structuredContent"]["tools"]]
                if ("wiki___create_page" in names) is present:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"replica B's search still answers {names}")

        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url_b)
            await found_on_b(False)
            wiki = [_tool("create_page", "Create a page in a wiki space", space="Space key")]
            created = await admin.create_target(gid, target_body("wiki", sdk_server.url, inline_tools=wiki))
            await found_on_b(True)
            assert (
                await admin.http.delete(f"/gateways/{gid}/targets/{created['targetId']}")
            ).status_code == 202
            await found_on_b(False)


LEDGER = [_tool("list_open_invoices", "List the unpaid invoices of an account", account="Account id")]
WEATHER = [_tool("get_forecast", "Get the weather forecast for a city", city="City name")]


async def test_an_embedding_service_adds_ranking_by_meaning(stack: Any, sdk_server: Any) -> None:
    """With GATEWAY_SEARCH_EMBEDDINGS_URL a replica fuses the service's ranking with its own: a query
    with no word of a tool finds it. The service going away degrades to words, never to an error, and
    its return brings meaning back. The API key is sent, and logged nowhere (test_zz_no_secrets)."""
    key = secrets.token_urlsafe(24)
    harness.SEEN_SECRETS.add(key)
    port = harness.free_port()
    service = harness.Proc(
        "embeddings",
        [sys.executable, str(harness.SERVERS / "embeddings.py"), "--port", str(port)],
        cwd=harness.REPO,
        port=port,
        env={"EMBEDDINGS_API_KEY": key},
        role="upstream",
    )
    service.start()
    service.wait_port()
    replica = stack.start_gateway_replica(
        same_public_url=False,
        GATEWAY_SEARCH_EMBEDDINGS_URL=f"http://127.0.0.1:{port}/v1/embeddings",
        GATEWAY_SEARCH_EMBEDDINGS_MODEL="concepts",
        GATEWAY_SEARCH_EMBEDDINGS_API_KEY=key,
        GATEWAY_SEARCH_EMBEDDINGS_TIMEOUT_SECONDS="0.5",
    )
    owed, umbrella = "money people still owe me", "will I need an umbrella"
    try:
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            gateway = await _gateway(admin, sdk_server, protocolConfiguration=SEMANTIC)
            gid = gateway["gatewayId"]
            for name, tools in (("ledger", LEDGER), ("weather", WEATHER)):
                body = target_body(name, sdk_server.url, inline_tools=tools)
                assert (await admin.create_target(gid, body))["status"] == "READY"

        async def first(client: Any, query: str, expected: str | None) -> list[str]:
            """The search's answer once its first tool is ``expected`` (the tools are embedded in
            the background after a change; until then the search ranks by words)."""
            for _ in range(150):
                names = await _names(client, query)
                if (names[0] if names else None) == expected:
                    return names
                await asyncio.sleep(0.1)
            raise AssertionError(f"{query!r} still finds {names}, not {expected}")

        async with mcp_client(gateway["gatewayUrl"], mode="legacy") as words_only:
            assert "ledger___list_open_invoices" not in await _names(words_only, owed)
            assert await _names(words_only, umbrella) == []
        async with mcp_client(f"{replica.url}/gateways/{gid}/mcp", mode="auto") as client:
            await first(client, owed, "ledger___list_open_invoices")
            await first(client, umbrella, "weather___get_forecast")
            # words still count: a query the words answer is answered as before
            assert (await _names(client, "open a new bug ticket in jira"))[0] == "jira___create_issue"

            service.stop()  # the service goes away: words only, no error, at once
            assert "ledger___list_open_invoices" not in await _names(client, owed)
            assert (await _names(client, "open a new bug ticket in jira"))[0] == "jira___create_issue"
            service.start()
            service.wait_port()
            await first(client, owed, "ledger___list_open_invoices")
        # restarted, the service was asked for the queries only: the tools' embeddings were kept
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/stats")).json()["texts"] < 10
    finally:
        replica.stop()
        service.stop()
    log = replica.log_path.read_text()
    assert "embedding service failed" in log and "answers again" in log, log[-2000:]
