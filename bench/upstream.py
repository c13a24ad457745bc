"""A minimal, fast upstream MCP server for the benchmarks: a raw ASGI app on uvicorn (uvloop +
httptools), JSON answers only, no SDK, no validation beyond what routing needs.

Endpoints (Streamable HTTP, protocol 2025-11-25):
  POST /mcp          10 tools: echo, tool_01 .. tool_09
  POST /mcp-<N>      N tools: echo, tool_0001 .. (for the 1,000-tool sync)
  DELETE /mcp*       204 (end of session)
Methods: initialize (hands out an Mcp-Session-Id), notifications/* (202), ping, tools/list
(precomputed bytes), tools/call (echo: the arguments back as text), anything else -32601.
It ignores Authorization (the benchmarks measure the gateway, not token checks) and keeps no
session state, so it is never the bottleneck of a tools/call benchmark.

Run: python bench/upstream.py --port 9000
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec

LATEST = "2025-11-25"
KNOWN_VERSIONS = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def tool(name: str) -> dict[str, Any]:
    """A realistic tool definition (~300 bytes): description and a small object schema."""
    return {
        "name": name,
        "description": f"Benchmark tool {name}: echoes its text argument back, as a stand-in for real work.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "what to echo"},
                "count": {"type": "integer", "minimum": 0, "description": "how often"},
            },
            "required": ["text"],
        },
    }


def tools(n: int) -> list[dict[str, Any]]:
    width = max(2, len(str(n - 1)))
    return [tool("echo")] + [tool(f"tool_{i:0{width}d}") for i in range(1, n)]


_lists: dict[str, bytes] = {}


def _tools_list_result(path: str) -> bytes | None:
    """The encoded ``result`` of tools/list for a path, built once."""
    if path not in _lists:
        if path == "/mcp":
            n = 10
        elif path.startswith("/mcp-") and path[5:].isdigit():
            n = int(path[5:])
        else:
            return None
        _lists[path] = _encode({"tools": tools(n)})
    return _lists[path]


JSON_HEADERS = [(b"content-type", b"application/json")]


def _reply(msg_id: Any, result: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + _encode(msg_id) + b',"result":' + result + b"}"


def _error(msg_id: Any, code: int, message: str) -> bytes:
    return _encode({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})


async def _send(
    send: Any, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    hdrs = list(headers or [])
    hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"].rstrip("/") or "/"
    listing = _tools_list_result(path)
    if path == "/healthz":
        await _send(send, 200, b'{"status":"ok"}', JSON_HEADERS)
        return
    if listing is None:
        await _send(send, 404, b"not found")
        return
    method = scope["method"]
    if method == "DELETE":
        await _send(send, 204)
        return
    if method != "POST":
        await _send(send, 405, b"", [(b"allow", b"POST, DELETE")])
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        msg = _decode(b"".join(chunks))
    except msgspec.DecodeError:
        await _send(send, 400, _error(None, -32700, "Parse error"), JSON_HEADERS)
        return
    if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
        await _send(send, 202)  # a response or junk: nothing to answer
        return
    rpc = msg["method"]
    if "id" not in msg:
        await _send(send, 202)  # notifications
        return
    msg_id = msg["id"]
    params = msg.get("params") or {}
    if rpc == "tools/call":
        args = params.get("arguments") or {}
        text = args.get("text", "") if isinstance(args, dict) else ""
        result = _encode({"content": [{"type": "text", "text": str(text)}], "isError": False})
        await _send(send, 200, _reply(msg_id, result), JSON_HEADERS)
    elif rpc == "tools/list":
        await _send(send, 200, _reply(msg_id, listing), JSON_HEADERS)
    elif rpc == "initialize":
        requested = params.get("protocolVersion")
        version = requested if requested in KNOWN_VERSIONS else LATEST
        result = _encode(
            {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "bench-upstream", "version": "1"},
            }
        )
        headers = [*JSON_HEADERS, (b"mcp-session-id", os.urandom(12).hex().encode())]
        await _send(send, 200, _reply(msg_id, result), headers)
    elif rpc == "ping":
        await _send(send, 200, _reply(msg_id, b"{}"), JSON_HEADERS)
    else:
        await _send(send, 200, _error(msg_id, -32601, f"Method not found: {rpc[:80]}"), JSON_HEADERS)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
