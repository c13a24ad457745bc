"""The MCP endpoint built in-process from its config: initialize, tools/list and session binding
answered without a socket, a bus or a database."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from nats.aio.client import Client as NatsClient
from starlette.requests import Request
from starlette.responses import Response

from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.jwt import JwtValidator
from gatehouse_contracts.lifecycle import target
from gatehouse_contracts.mcp_client import McpHttp
from gatehouse_contracts.mongo import connect
from gatehouse_gateway.catalog import Catalog, GatewayCatalog, RoutedTarget
from gatehouse_gateway.json_parts import JsonParts
from gatehouse_gateway.mcp_endpoint import McpConfig, McpEndpoint
from gatehouse_gateway.sessions import EndedSessions
from gatehouse_gateway.store import Store
from gatehouse_gateway.upstream import UpstreamPool
from gatehouse_gateway.user_auth import Inbound, UserTokens

VERSION = "2025-11-25"


async def _no_headers(target: RoutedTarget) -> dict[str, str]:
    return {}


def _endpoint() -> McpEndpoint:
    # collaborators that touch nothing until a request needs them (tools/call, a CUSTOM_JWT caller)
    catalog = Catalog(Store(connect("mongodb://127.0.0.1:1"), "unused"))
    gateway = {
        "_id": "gw",
        "name": "gw",
        "authorizerType": "NONE",
        "protocolConfiguration": {"mcp": {"supportedVersions": [VERSION]}},
    }
    cat = GatewayCatalog(gateway)
    cat.targets["t"] = target(
        {
            "_id": "t",
            "name": "files",
            "gatewayId": "gw",
            "generation": 1,
            "status": {"status": "READY"},
            "spec": {"endpoint": "http://files/mcp", "credentials": []},
            "toolsJson": msgspec.json.encode([{"name": "read", "inputSchema": {"type": "object"}}]),
            "createdAt": 0,
            "updatedAt": 0,
        }
    )
    cat.rebuild()
    catalog.gateways["gw"] = cat
    config = McpConfig(
        secret=b"s" * 32,
        public_url="http://gateway",
        allowed_origins=[],
        page_size=100,
        session_max_age=3600,
        max_body_bytes=1 << 20,
    )
    return McpEndpoint(
        catalog,
        UpstreamPool(McpHttp(), 1.0, _no_headers),
        EndedSessions(3600),
        Inbound(JwtValidator(httpx.AsyncClient())),
        UserTokens(IdentityClient(NatsClient, "gateway")),
        config,
    )


async def _post(endpoint: McpEndpoint, body: dict[str, Any], session: str | None = None) -> Response:
    headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
    if session is not None:
        headers.append((b"mcp-session-id", session.encode()))
    raw = msgspec.json.encode(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/gateways/gw/mcp",
        "headers": headers,
        "query_string": b"",
        "path_params": {"gateway_id": "gw"},
    }
    return await endpoint.handle(Request(scope, receive))


def _body(response: Response) -> Any:
    parts = response.parts if isinstance(response, JsonParts) else [response.body]
    return msgspec.json.decode(b"".join(parts))


async def test_initialize_then_tools_list() -> None:
    endpoint = _endpoint()
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION}}
    answer = await _post(endpoint, init)
    assert answer.status_code == 200 and _body(answer)["result"]["protocolVersion"] == VERSION
    session = dict(answer.headers)["mcp-session-id"]
    listed = await _post(endpoint, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert [t["name"] for t in _body(listed)["result"]["tools"]] == ["files___read"]


async def test_a_request_without_a_valid_session_is_refused() -> None:
    endpoint = _endpoint()
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert (await _post(endpoint, tools_list)).status_code == 400
    assert (await _post(endpoint, tools_list, "forged.session")).status_code == 404
