"""Raw Streamable HTTP requests for tests that check the wire itself (status codes, headers, errors)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_ids = itertools.count(1)


def initialize(version: str = "2025-11-25", msg_id: int = 1) -> dict[str, Any]:
    """An initialize request, as a client sends it first."""
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: Any,
    *,
    session: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    h = dict(HEADERS)
    if session:
        h["Mcp-Session-Id"] = session
        h["MCP-Protocol-Version"] = "2025-11-25"
    h.update(headers or {})
    if raw is not None:
        return await http.post(url, content=raw, headers=h)
    return await http.post(url, json=body, headers=h)


async def open_session(http: httpx.AsyncClient, url: str, version: str = "2025-11-25") -> str:
    r = await post(
        http,
        url,
        initialize(version, msg_id=0),
    )
    assert r.status_code == 200, r.text
    session = r.headers["mcp-session-id"]
    r = await post(http, url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session)
    assert r.status_code == 202, r.text
    return session


async def rpc(
    http: httpx.AsyncClient, url: str, session: str | None, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await post(
        http,
        url,
        {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or {}},
        session=session,
    )
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()  # type: ignore[no-any-return]


MODERN = "2026-07-28"


def modern_request(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    capabilities: dict[str, Any] | None = None,
    msg_id: int | None = None,
) -> dict[str, Any]:
    """A 2026-07-28 request: ``params`` plus the per-request ``_meta`` envelope."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities if capabilities is not None else {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    }
    return {
        "jsonrpc": "2.0",
        "id": msg_id if msg_id is not None else next(_ids),
        "method": method,
        "params": {**(params or {}), "_meta": meta},
    }


def modern_headers(body: dict[str, Any], change: dict[str, str | None] | None = None) -> dict[str, str]:
    """The headers a 2026-07-28 client mirrors from ``body``, then ``change`` (None drops one)."""
    h: dict[str, str | None] = {"MCP-Protocol-Version": MODERN, "Mcp-Method": body["method"]}
    if body["method"] == "tools/call":
        h["Mcp-Name"] = body["params"]["name"]
    h.update(change or {})
    return {k: v for k, v in h.items() if v is not None}


async def modern_post(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str | None] | None = None
) -> httpx.Response:
    """POST a 2026-07-28 request with its mirrored headers (``headers`` change, add or drop some)."""
    return await post(http, url, body, headers=modern_headers(body, headers))
