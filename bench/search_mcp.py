# ruff: noqa: S101  (a benchmark: asserts on its own set-up)
"""The search tool's latency through the MCP endpoint at 10,000 tools.

Starts NATS, a MongoDB-compatible server and the services (production settings, as bench/run.py),
creates a gateway with ``searchType: "SEMANTIC"`` whose targets are the evaluation catalog scaled to
``--tools`` tools (bench/search_eval.py's ``scale``: github-payments, jira-emea, ...), each an inline
``mcpToolSchema`` target (READY without a server), then times ``tools/call`` of
``x_amz_bedrock_agentcore_search`` for every evaluation query, one at a time over one session
(HTTP/1.1 keep-alive, 2025-11-25), ``--rounds`` times; beside it, ``ping`` on the same session: the
endpoint's floor. Also: how long after the last target's create the search finds it (the index
rebuild), and tools/list's first page with and without the search tool.

Usage: make eval-mcp, or python bench/search_mcp.py [--tools 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import harness  # noqa: E402
from rawmcp import open_session, post  # noqa: E402

from bench.run import PRODUCTION_ENV, neutral_service_commands  # noqa: E402
from bench.search_eval import DATA, load_catalog, load_queries, percentile, scale  # noqa: E402

SEARCH = "x_amz_bedrock_agentcore_search"
SEPARATOR = "___"


async def _call(http: httpx.AsyncClient, url: str, session: str, method: str, params: dict[str, Any]) -> Any:
    r = await post(
        http, url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, session=session
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _timed(
    http: httpx.AsyncClient, url: str, session: str, method: str, params: dict[str, Any]
) -> float:
    """Milliseconds from sending the request to the whole answer received (not decoded)."""
    start = time.perf_counter()
    r = await post(
        http, url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, session=session
    )
    assert r.status_code == 200 and b'"error"' not in r.content[:200], r.text[:500]
    return (time.perf_counter() - start) * 1000


async def _create(admin: httpx.AsyncClient, gid: str, name: str, tools: list[dict[str, Any]]) -> float:
    """Milliseconds of an inline target's create (its answer comes once this replica serves it)."""
    server = {
        "endpoint": "http://127.0.0.1:9/mcp",
        "mcpToolSchema": {"inlinePayload": json.dumps({"tools": tools})},
    }
    start = time.perf_counter()
    r = await admin.post(
        f"/gateways/{gid}/targets", json={"name": name, "targetConfiguration": {"mcp": {"mcpServer": server}}}
    )
    assert r.status_code == 202, r.text
    return (time.perf_counter() - start) * 1000


def _targets(size: int) -> dict[str, list[dict[str, Any]]]:
    by_target: dict[str, list[dict[str, Any]]] = {}
    for prefixed, data in scale(load_catalog(), size):
        target, _, own = prefixed.partition(SEPARATOR)
        by_target.setdefault(target, []).append({**json.loads(data), "name": own})
    return by_target


async def run(stack: Any, size: int, rounds: int) -> dict[str, Any]:
    catalog = load_catalog()
    queries = [q for q, _ in load_queries(DATA / "queries.txt", {n for n, _ in catalog})]
    queries += [q for q, _ in load_queries(DATA / "queries_holdout.txt", {n for n, _ in catalog})]
    targets = _targets(size)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.admin_headers, timeout=60
    ) as admin:
        r = await admin.post(
            "/gateways",
            json={
                "name": f"search{uuid.uuid4().hex[:6]}",
                "protocolConfiguration": {"mcp": {"searchType": "SEMANTIC"}},
            },
        )
        assert r.status_code == 202, r.text
        gateway = r.json()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        names = list(targets)
        creates = [await _create(admin, gid, name, targets[name]) for name in names[:-1]]
        async with httpx.AsyncClient(timeout=60) as http:
            session = await open_session(http, url)
            # the last target: from its create's answer to the first search that finds it
            last = names[-1]
            query = {"name": SEARCH, "arguments": {"query": f"{last} {targets[last][0]['name']}"}}
            start = time.perf_counter()
            await _create(admin, gid, last, targets[last])
            found = await _call(http, url, session, "tools/call", query)
            visible = (time.perf_counter() - start) * 1000
            tools = found["result"]["structuredContent"]["tools"]
            assert tools and tools[0]["name"].startswith(f"{last}{SEPARATOR}"), tools[:1]
            listed = await _call(http, url, session, "tools/list", {})
            assert listed["result"]["tools"][0]["name"] == SEARCH
            for q in queries[:20]:  # warm up
                await _timed(http, url, session, "tools/call", {"name": SEARCH, "arguments": {"query": q}})
            search: list[float] = []
            ping: list[float] = []
            for _ in range(rounds):
                for q in queries:
                    search.append(
                        await _timed(
                            http, url, session, "tools/call", {"name": SEARCH, "arguments": {"query": q}}
                        )
                    )
                    ping.append(await _timed(http, url, session, "ping", {}))
            listing = [await _timed(http, url, session, "tools/list", {}) for _ in range(200)]
            # the same gateway without searchType: tools/list and a target's create as they were
            r = await admin.put(f"/gateways/{gid}", json={"name": gateway["name"]})
            assert r.status_code == 202, r.text
            listed = await _call(http, url, session, "tools/list", {})
            assert listed["result"]["tools"][0]["name"] != SEARCH
            plain = [await _timed(http, url, session, "tools/list", {}) for _ in range(200)]
            plain_creates = [await _create(admin, gid, f"{name}-plain", targets[name]) for name in names[:50]]
    return {
        "tools": sum(len(t) for t in targets.values()),
        "targets": len(targets),
        "searches": len(search),
        "search_p50_ms": statistics.median(search),
        "search_p99_ms": percentile(search, 99),
        "ping_p50_ms": statistics.median(ping),
        "ping_p99_ms": percentile(ping, 99),
        "tools_list_p50_ms": statistics.median(listing),
        "tools_list_plain_p50_ms": statistics.median(plain),
        "create_to_found_ms": visible,
        "create_p50_ms": statistics.median(creates[-50:]),
        "create_plain_p50_ms": statistics.median(plain_creates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-search-mcp-"))
    harness.set_log_dir(tmp / "logs")
    try:
        nats = harness.start_nats(tmp / "nats")
        mongo = harness.start_mongo(tmp / "mongo")
        stack = harness.start_stack(
            nats.url or "",
            mongo.url or "",
            run_id=f"bench_{uuid.uuid4().hex[:6]}",
            **PRODUCTION_ENV,
            **neutral_service_commands(),
        )
        result = asyncio.run(run(stack, args.tools, args.rounds))
    finally:
        harness.stop_all()
    print(
        f"{result['tools']} tools in {result['targets']} targets, {result['searches']} searches through "
        f"the MCP endpoint (2025-11-25, one session, one at a time):\n"
        f"  search tools/call  p50 {result['search_p50_ms']:.2f} ms  p99 {result['search_p99_ms']:.2f} ms\n"
        f"  ping (the floor)   p50 {result['ping_p50_ms']:.2f} ms  p99 {result['ping_p99_ms']:.2f} ms\n"
        f"  tools/list (one page of every tool, received, not decoded) p50 "
        f"{result['tools_list_p50_ms']:.2f} ms; "
        f"without searchType {result['tools_list_plain_p50_ms']:.2f} ms\n"
        f"  a target's create (answered once this replica serves it) p50 {result['create_p50_ms']:.0f} ms; "
        f"without searchType {result['create_plain_p50_ms']:.0f} ms\n"
        f"  the last target's tools found by the first search after its create: "
        f"{result['create_to_found_ms']:.0f} ms from the create's start"
    )


if __name__ == "__main__":
    main()
