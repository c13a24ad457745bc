"""Traces across processes: a stack of its own exporting to an OTLP/HTTP collector in this process
(harness.OtlpCollector, the protobuf wire format), its own NATS so no other stack's services answer
its RPCs. One tools/call that needs identity is one trace: the client's span (its traceparent in
params._meta, as the MCP SDK sends it) -> the gateway's request span -> the gateway's RPC span ->
identity's span for that RPC (FastStream's middleware, parented by the NATS header)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import httpx
import pytest
from admin import Admin, offline_provider_body, unique, user_target_body
from rawmcp import post

SERVER, CLIENT = 2, 3  # OTLP SpanKind


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, mongo_url: str) -> Iterator[tuple[Any, Any]]:
    collector = harness.OtlpCollector()
    nats = harness.start_nats(Path(tmp_path_factory.mktemp("nats-traced")))
    stack = harness.start_stack(
        nats.url or "",
        mongo_url,
        run_id=f"traced_{uuid.uuid4().hex[:8]}",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s, not the default 5 s
    )
    try:
        yield stack, collector
    finally:
        stack.stop()
        nats.stop()
        collector.stop()


async def _spans(collector: Any, trace_id: str, ready: Any, timeout: float = 15) -> list[Any]:
    deadline = time.monotonic() + timeout
    while not ready(spans := collector.trace(trace_id)):  # exported in batches: poll the collector
        assert time.monotonic() < deadline, [(s.service, s.name) for s in spans]
        await asyncio.sleep(0.1)
    return spans


async def _session(http: httpx.AsyncClient, url: str, headers: dict[str, str], capabilities: Any) -> str:
    hello = {
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": {"name": "t", "version": "1"},
    }
    r = await post(http, url, _call("initialize", hello), headers=headers)
    return r.headers["mcp-session-id"]


def _call(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


async def test_a_tool_call_that_needs_identity_is_one_trace(
    traced: Any, oidc_provider: Any, sdk_server: Any
) -> None:
    stack, collector = traced
    audience = f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"
    async with (
        Admin(stack.gateway_url, stack.admin_headers) as admin,
        httpx.AsyncClient(base_url=stack.identity_url, headers=stack.admin_headers) as identity,
    ):
        provider = unique("as")
        r = await identity.post(
            "/identities/CreateOauth2CredentialProvider", json=offline_provider_body(provider)
        )
        assert r.status_code == 201, r.text
        gateway = await admin.create_jwt_gateway(oidc_provider.url, audience)
        gid = gateway["gatewayId"]
        tools = [{"name": "whoami", "inputSchema": {"type": "object"}}]
        body = user_target_body(
            "traced", sdk_server.url, provider, "https://app.example/back", inline_tools=tools
        )
        target = await admin.create_target(gid, body)
        ready = await admin.wait_status(gid, target["targetId"])
        assert ready["status"] == "READY", ready

    jwt = harness.user_tokens(oidc_provider, "U1", resource=audience)["access_token"]
    url, auth = gateway["gatewayUrl"], {"Authorization": f"Bearer {jwt}"}
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 15  # until this replica's catalog has the target
        while True:
            session = await _session(http, url, auth, {"elicitation": {"url": {}}})
            listed = (await post(http, url, _call("tools/list", {}), session=session, headers=auth)).json()
            if listed["result"]["tools"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        parent, trace_id, client_span = _traceparent()
        meta = {"traceparent": parent}
        call = _call("tools/call", {"name": "traced___whoami", "arguments": {}, "_meta": meta})
        answer = (await post(http, url, call, session=session, headers=auth)).json()
    assert answer["error"]["code"] == -32042, answer  # identity started a consent: the call needed it

    def complete(spans: list[Any]) -> bool:
        return any(s.service == "gatehouse-identity" for s in spans) and any(
            s.service == "gatehouse-gateway" and s.kind == SERVER for s in spans
        )

    spans = await _spans(collector, trace_id, complete)
    by_id = {s.span_id: s for s in spans}
    request = next(s for s in spans if s.service == "gatehouse-gateway" and s.kind == SERVER)
    assert request.name == "tools/call" and request.parent_span_id == client_span  # the client's, from _meta
    assert request.attributes["gatehouse.gateway_id"] == gid
    rpcs = [s for s in spans if s.service == "gatehouse-gateway" and s.name.startswith("identity ")]
    assert rpcs and all(s.kind == CLIENT and by_id[s.parent_span_id] is request for s in rpcs)
    served = [s for s in spans if s.service == "gatehouse-identity"]
    # identity's spans (FastStream's: processing the request, publishing the reply) hang under the
    # gateway's RPC spans: one trace across the two processes
    assert any(by_id.get(s.parent_span_id) in rpcs for s in served), served
    assert all(by_id.get(s.parent_span_id) in rpcs + served for s in served), served
    assert {s.name for s in rpcs} >= {"identity GetResourceOauth2Token"}


async def test_the_traceparent_header_and_the_span_of_the_call_to_the_target(
    traced: Any, sdk_server: Any
) -> None:
    stack, collector = traced
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
        await admin.ready_target(gid, "up", sdk_server.url)
        session = await _session(http, url, {}, {})
        parent, trace_id, client_span = _traceparent()
        call = _call("tools/call", {"name": "up___echo", "arguments": {"text": "x"}})
        called = (await post(http, url, call, session=session, headers={"traceparent": parent})).json()
        assert called["result"]["content"][0]["text"] == "x"

    def complete(spans: list[Any]) -> bool:
        return any(s.kind == CLIENT and s.name == "tools/call up" for s in spans)

    spans = await _spans(collector, trace_id, complete)
    request = next(s for s in spans if s.kind == SERVER and s.service == "gatehouse-gateway")
    assert request.parent_span_id == client_span  # the header's
    upstream = next(s for s in spans if s.name == "tools/call up")
    assert upstream.parent_span_id == request.span_id and upstream.service == "gatehouse-gateway"
