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
