"""/metrics on every service's port, against the running stack: the series an operator's dashboard
(docs/grafana-dashboard.json) reads move with real traffic, and no label carries a user or a token."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from admin import Admin
from prometheus_client.parser import text_string_to_metric_families
from rawmcp import open_session, rpc

DASHBOARD = (Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json").read_text()
NAME = re.compile(r"\b(?:gatehouse|faststream)_[a-z_]+")


async def _scrape(http: httpx.AsyncClient, url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await http.get(f"{url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text[:200]
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def test_metrics_follow_traffic(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        target = await admin.ready_target(gid, "metered", sdk_server.url)
        tid = target["targetId"]
        before = await _scrape(http, stack.gateway_url)  # ready_target looked at the catalog
        session = await open_session(http, url)
        for _ in range(3):
            await rpc(http, url, session, "tools/list")
        called = await rpc(
            http, url, session, "tools/call", {"name": "metered___add", "arguments": {"a": 1, "b": 2}}
        )
        assert called["result"]["content"][0]["text"] == "3"
        unknown = await rpc(http, url, session, "tools/call", {"name": "metered___nope", "arguments": {}})
        assert "error" in unknown
        await http.post(
            f"{stack.gateway_url}/gateways/no-such-gateway/mcp", json={}
        )  # a 404: label "unknown"

        g = await _scrape(http, stack.gateway_url)

        def grew(name: str, **labels: str) -> float:
            return _value(g, name, **labels) - _value(before, name, **labels)

        count = "gatehouse_mcp_request_duration_seconds_count"
        assert grew(count, gateway=gid, method="tools/list", outcome="ok") == 3
        assert grew(count, gateway=gid, method="initialize", outcome="ok") == 1
        assert grew(count, gateway=gid, method="tools/call", outcome="ok") == 1
        assert grew(count, gateway=gid, method="tools/call", outcome="jsonrpc_error") == 1
        assert grew(count, gateway="unknown", outcome="client_error") == 1
        assert not any(("gateway", "no-such-gateway") in ls for _, ls in g)  # never a label from a URL
        calls = "gatehouse_tool_call_duration_seconds_count"
        assert grew(calls, gateway=gid, target=tid, outcome="success") == 1
        assert _value(g, "gatehouse_catalog_tools", gateway=gid) >= 5
        assert _value(g, "gatehouse_catalog_targets", gateway=gid, status="READY") == 1
        # the bus: the tool.invoked event published by hand (nats-py), catalog events consumed by FastStream
        assert _value(g, "faststream_received_messages_total", app_name="gateway") >= 1

        # identity: a completion with a made-up handle is refused and counted by reason
        r = await http.post(
            f"{stack.identity_url}/identities/CompleteResourceTokenAuth",
            json={"userIdentifier": {"userId": "someone"}, "sessionUri": "made-up"},
            headers=stack.admin_headers,
        )
        assert r.status_code == 403
        i = await _scrape(http, stack.identity_url)
        assert _value(i, "gatehouse_identity_authorization_failures_total", reason="unknown_session") >= 1
        assert ("gatehouse_identity_vault_tokens", frozenset()) in i
        assert _value(i, "gatehouse_bus_published_messages_total") >= 1

        # sync-worker: the target's sync, done
        s = await _scrape(http, stack.sync_worker.url)
        assert _value(s, "gatehouse_sync_duration_seconds_count", kind="target", outcome="done") >= 1
        assert ("gatehouse_sync_pending_consents", frozenset()) in s
        assert _value(s, "gatehouse_bus_rpc_duration_seconds_count") >= 0  # declared, scraped

        for samples in (g, i, s):  # no user, session or token ever becomes a label
            values = {v for _, ls in samples for _, v in ls}
            assert "someone" not in values and session not in values

        # the dashboard reads only metrics the services declare
        declared = set()
        for base in (stack.gateway_url, stack.identity_url, stack.sync_worker.url):
            declared |= set(re.findall(r"^# HELP (\S+)", (await http.get(f"{base}/metrics")).text, re.M))
        exprs = [t["expr"] for p in json.loads(DASHBOARD)["panels"] for t in p.get("targets", [])]
        used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(NAME, e)}
        assert used and not used - declared, used - declared


async def test_the_mcp_histograms_can_be_turned_off(stack: Any, sdk_server: Any) -> None:
    """GATEWAY_METRICS_ENABLED=false: the replica serves MCP as ever and counts none of it (the
    baseline `bench/run.py --only observe` compares against)."""
    quiet = stack.start_gateway_replica(GATEWAY_METRICS_ENABLED="false")
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        await admin.ready_target(gid, "unmetered", sdk_server.url)
        url = f"{quiet.url}/gateways/{gid}/mcp"
        session = await open_session(http, url)
        assert (await rpc(http, url, session, "tools/list"))["result"]["tools"]
        call = {"name": "unmetered___echo", "arguments": {"text": "x"}}
        assert (await rpc(http, url, session, "tools/call", call))["result"]["content"][0]["text"] == "x"
        samples = await _scrape(http, quiet.url)
    assert _value(samples, "gatehouse_mcp_request_duration_seconds_count") == 0
    assert _value(samples, "gatehouse_tool_call_duration_seconds_count") == 0
    assert _value(samples, "gatehouse_catalog_tools", gateway=gid) > 0  # the rest is still there
