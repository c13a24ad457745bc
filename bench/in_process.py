"""The MCP endpoint's own cost, without sockets: the gateway's ASGI app (`McpFastPath`) answering
tools/list for a 1-target catalog and tools/call of one of its tools (the target answered by an
in-process stand-in, so only the gateway's own work is timed), each in 2025-11-25 with a session
and in 2026-07-28 with its envelope and mirrored headers; and the floor app (bench/floor.py)
answering the same bytes, each called in a loop in this process with a prepared request. What is
left between these numbers and `make bench`'s is uvicorn, the sockets and the event loop, which
both sides pay.

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
from gatehouse_contracts.mcp_client import ToolResult
from gatehouse_gateway.catalog import Catalog, GatewayCatalog
from gatehouse_gateway.fast_path import McpFastPath
from gatehouse_gateway.mcp_endpoint import McpConfig, McpEndpoint
from gatehouse_gateway.sessions import EndedSessions, issue
from gatehouse_gateway.telemetry import McpMetrics

SECRET = b"s" * 32
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
ENVELOPE = (
    b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    b'"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}'
)
MODERN_BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{' + ENVELOPE + b"}}"
CALL_ARGS = b'"name":"t0001___echo","arguments":{"text":"hello"}'
CALL_BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{' + CALL_ARGS + b"}}"
MODERN_CALL_BODY = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{' + CALL_ARGS + b"," + ENVELOPE + b"}}"
)
RESULT = ToolResult(b'{"content":[{"type":"text","text":"hello"}],"isError":false}', False)


class StandIn:
    """The upstream pool's place: every call answers at once (no socket, no target)."""

    async def call_tool(self, *args: Any, **kwargs: Any) -> ToolResult:
        return RESULT


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
        StandIn(),  # type: ignore[arg-type]
        EndedSessions(60),
        None,  # type: ignore[arg-type]  # an open gateway: no authenticator, no user tokens
        None,  # type: ignore[arg-type]
        config,
    )
    return McpFastPath(None, endpoint, McpMetrics(catalog))


async def per_request_us(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int, body: bytes = BODY
) -> float:
    request = {"type": "http.request", "body": body, "more_body": False}
    never = asyncio.Event()

    def receiver() -> Any:
        """As uvicorn's: the body, then (the client staying) nothing until the answer is sent."""
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return request
            await never.wait()
            return {"type": "http.disconnect"}

        return receive

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
        await app(scope(), receiver(), send)
    started = time.perf_counter()
    for _ in range(n):
        await app(scope(), receiver(), send)
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
        call_us = await per_request_us(app, "/gateways/g/mcp", headers, n, CALL_BODY)
        modern_call = [h for h in modern if h[0] != b"mcp-method"]
        modern_call += [(b"mcp-method", b"tools/call"), (b"mcp-name", b"t0001___echo")]
        modern_call_us = await per_request_us(app, "/gateways/g/mcp", modern_call, n, MODERN_CALL_BODY)
        floor_us = await per_request_us(floor_app, "/floor/t1", headers, n)
    print(f"gateway tools/list (1 target) {gateway_us:6.1f} us per request")
    print(f"  the same at 2026-07-28      {modern_us:6.1f} us per request")
    print(f"gateway tools/call (stand-in) {call_us:6.1f} us per request")
    print(f"  the same at 2026-07-28      {modern_call_us:6.1f} us per request")
    print(f"floor (3 KB of bytes)          {floor_us:6.1f} us per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    asyncio.run(main(parser.parse_args().requests))
