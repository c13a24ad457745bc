"""The MCP endpoint's own cost, without sockets: the gateway's ASGI app (`McpFastPath`) answering
tools/list for a 1-target catalog (2025-11-25 with a session; 2026-07-28 with its envelope and
mirrored headers), and the floor app (bench/floor.py) answering the same bytes,
each called in a loop in this process with a prepared request. What is left between these numbers
and `make bench`'s is uvicorn, the sockets and the event loop, which both sides pay.

Run: .venv/bin/python bench/in_process.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import floor
import msgspec
import upstream

from gatehouse_contracts.lifecycle import target
from gatehouse_gateway.catalog import Catalog, GatewayCatalog
from gatehouse_gateway.fast_path import McpFastPath
from gatehouse_gateway.mcp_endpoint import McpConfig, McpEndpoint
from gatehouse_gateway.sessions import EndedSessions, issue
from gatehouse_gateway.telemetry import McpMetrics

SECRET = b"s" * 32
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
MODERN_BODY = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{'
    b'"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},'
    b'"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}'
)


def gateway_app() -> Any:
    catalog = Catalog(None)  # type: ignore[arg-type]  # no store: the catalog is filled here
    gateway = {
        "_id": "g",
        "name": "g",
        "authorizerType": "NONE",
        "protocolConfiguration": {"mcp": {"supportedVersions": ["2025-11-25"]}},
    }
    cat = GatewayCatalog(gateway)
    cat.targets["t"] = target(
        {
            "_id": "t",
            "name": "t0001",
            "gatewayId": "g",
            "generation": 1,
            "status": {"status": "READY"},
            "spec": {"endpoint": "http://upstream/mcp", "credentials": []},
            "toolsJson": msgspec.json.encode(upstream.tools(10)),
            "createdAt": 0,
            "updatedAt": 0,
        }
    )
    cat.rebuild()
    catalog.gateways["g"] = cat
    config = McpConfig(
        secret=SECRET,
        public_url="http://127.0.0.1:1",
        allowed_origins=[],
        page_size=1000,
        session_max_age=3600,
        max_body_bytes=1 << 20,
    )
    endpoint = McpEndpoint(
        catalog,
        None,  # type: ignore[arg-type]  # tools/list needs no upstream, authenticator or tokens
        EndedSessions(60),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        config,
    )
    return McpFastPath(None, endpoint, McpMetrics(catalog))


async def per_request_us(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int, body: bytes = BODY
) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"unexpected answer: {message}")

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "headers": list(headers),
            "query_string": b"",
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 1),
            "client": ("127.0.0.1", 2),
            "root_path": "",
        }

    for _ in range(n // 10):  # warm up
        await app(scope(), receive, send)
    started = time.perf_counter()
    for _ in range(n):
        await app(scope(), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    session = issue(SECRET, "g", "2025-11-25", "").encode()
    headers = [
        (b"host", b"127.0.0.1:1"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-session-id", session),
        (b"mcp-protocol-version", b"2025-11-25"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t1.json").write_bytes(b"x" * 3000)
        floor_app = floor.build(SimpleNamespace(dir=tmp))
        app = gateway_app()
        gateway_us = await per_request_us(app, "/gateways/g/mcp", headers, n)
        modern = [h for h in headers if h[0] not in (b"mcp-session-id", b"mcp-protocol-version")]
        modern += [(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/list")]
        modern_us = await per_request_us(app, "/gateways/g/mcp", modern, n, MODERN_BODY)
        floor_us = await per_request_us(floor_app, "/floor/t1", headers, n)
    print(f"gateway tools/list (1 target) {gateway_us:6.1f} us per request")
    print(f"  the same at 2026-07-28      {modern_us:6.1f} us per request")
    print(f"floor (3 KB of bytes)          {floor_us:6.1f} us per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    asyncio.run(main(parser.parse_args().requests))
