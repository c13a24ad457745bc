"""Upstream MCP servers for tests: the official SDK's, server-everything, and ones that are not MCP."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .procs import DEFAULT_TIMEOUT, LOCALHOST, REPO, SERVERS, TESTS, Proc, StartError, free_port


def start_sdk_server(
    *,
    json_response: bool = False,
    extra_tools: int = 0,
    page_size: int | None = None,
    stateless: bool = False,
    bearer_tokens: Sequence[str] = (),
    tricky_schema: bool = False,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwt_scopes: Sequence[str] = (),
    era: str = "dual",
    interactive_tools: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """tests/servers/sdk_server.py; `.url` = its MCP endpoint http://127.0.0.1:<port>/mcp.

    Tools: echo, add, slow, fail, whoami (+ tool_0000.. with extra_tools, + tricky.schema with
    tricky_schema). page_size paginates tools/list. bearer_tokens makes it answer 401 to any
    request without `Authorization: Bearer <one of them>` (passed via env, not argv).
    jwt_issuer (e.g. an oidc-provider's `.url`) makes it an OAuth resource server: every MCP
    request needs a JWT of that issuer with aud = jwt_audience (default: `.url`, the MCP URL)
    and every scope in jwt_scopes, else 401 (403 for a missing scope) with WWW-Authenticate
    carrying resource_metadata (`.resource_metadata_url`, RFC 9728); whoami then also returns
    the token's sub, client_id, scope, aud, iss.
    era: "dual" (the SDK's own dual-era server, the default), "legacy" (handshake-era requests only,
    as servers before 2026-07-28) or "modern" (2026-07-28 only); see the server's --era.
    interactive_tools adds steps (progress; counts cancellations in /stats), confirm (2026-07-28
    input_required), regional (x-mcp-header) and badheader (an invalid x-mcp-header, listed only).
    """
    port = free_port()
    cmd = [sys.executable, str(SERVERS / "sdk_server.py"), "--port", str(port)]
    if json_response:
        cmd.append("--json-response")
    if extra_tools:
        cmd += ["--extra-tools", str(extra_tools)]
    if page_size:
        cmd += ["--page-size", str(page_size)]
    if stateless:
        cmd.append("--stateless")
    if tricky_schema:
        cmd.append("--tricky-schema")
    cmd += ["--era", era]
    if interactive_tools:
        cmd.append("--interactive-tools")
    if jwt_issuer:
        cmd += ["--jwt-issuer", jwt_issuer]
        if jwt_audience:
            cmd += ["--jwt-audience", jwt_audience]
        for scope in jwt_scopes:
            cmd += ["--jwt-scope", scope]
    elif jwt_audience or jwt_scopes:
        raise ValueError("jwt_audience / jwt_scopes need jwt_issuer")
    env = {"SDK_SERVER_BEARER_TOKENS": ",".join(bearer_tokens)} if bearer_tokens else {}
    name = "sdk-server-" + ("json" if json_response else "sse") + ("-jwt" if jwt_issuer else "") + f"-{era}"
    proc = Proc(name, cmd, env, cwd=REPO, port=port, url=f"http://{LOCALHOST}:{port}/mcp", role="upstream")
    proc.resource_metadata_url = f"http://{LOCALHOST}:{port}/.well-known/oauth-protected-resource/mcp"  # type: ignore[attr-defined]
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc


def everything_entry() -> Path:
    return TESTS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def start_everything_server(*, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """@modelcontextprotocol/server-everything in Streamable HTTP mode.

    `PORT=<port> node tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js
    streamableHttp`; stateful, SSE responses; MCP endpoint `.url` = http://127.0.0.1:<port>/mcp.
    (It listens on all interfaces; it has no host option.)
    """
    entry = everything_entry()
    if not entry.exists():
        raise StartError(f"{entry} missing: run `npm ci --prefix tests` (tests/package-lock.json)")
    node = shutil.which("node")
    if not node:
        raise StartError("node not found on PATH (needed for @modelcontextprotocol/server-everything)")
    port = free_port()
    proc = Proc(
        "server-everything",
        [node, str(entry), "streamableHttp"],
        {"PORT": str(port)},
        cwd=TESTS,
        port=port,
        url=f"http://{LOCALHOST}:{port}/mcp",
        role="upstream",
    )
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc


def start_not_mcp(*, hang: bool = False, bad_error: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """tests/servers/not_mcp.py: HTML 200 to every POST, or (hang) never answers, or (bad_error)
    syncs but answers tools/call with a malformed JSON-RPC error.
    `.url` = http://127.0.0.1:<port>/mcp (any path behaves the same)."""
    port = free_port()
    cmd = [sys.executable, str(SERVERS / "not_mcp.py"), "--port", str(port)]
    if hang:
        cmd.append("--hang")
    if bad_error:
        cmd.append("--bad-error")
    proc = Proc(
        "not-mcp-hang" if hang else "not-mcp-bad-error" if bad_error else "not-mcp",
        cmd,
        cwd=REPO,
        port=port,
        url=f"http://{LOCALHOST}:{port}/mcp",
        role="upstream",
    )
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc
