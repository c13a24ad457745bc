"""The MCP Inspector's CLI (npm @modelcontextprotocol/inspector, `--cli`, tests/node_modules) works
against the gateway unchanged: as it comes (an ad-hoc URL speaks the handshake era, 2025-11-25) it
lists the tools and calls one; told `--protocol-era modern` it does the same at 2026-07-28."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import harness
import pytest
from admin import Admin

LAUNCHER = harness.TESTS / "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"

pytestmark = pytest.mark.skipif(
    not LAUNCHER.exists(), reason="the MCP Inspector is missing: run `npm ci --prefix tests`"
)


async def _inspector(home: Path, *args: str) -> Any:
    """One `mcp-inspector --cli` run; its JSON output (a fresh HOME: no catalog, no stored auth)."""
    node = harness.node_binary(22)
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(node).parent}:{os.environ.get('PATH', '')}"}
    proc = await asyncio.create_subprocess_exec(
        node,
        str(LAUNCHER),
        "--cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (args, out.decode(errors="replace"), err.decode(errors="replace"))
    return json.loads(out)


async def test_the_inspector_cli_lists_and_calls(stack: Any, sdk_server: Any, tmp_path: Path) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.ready_target(gateway["gatewayId"], "sdk", sdk_server.url)
    url = gateway["gatewayUrl"]
    for era in ([], ["--protocol-era", "modern"]):
        listed = await _inspector(tmp_path, url, *era, "--method", "tools/list")
        names = {t["name"] for t in listed["tools"]}
        assert {"sdk___add", "sdk___echo"} <= names, listed
        called = await _inspector(
            tmp_path,
            url,
            *era,
            "--method",
            "tools/call",
            "--tool-name",
            "sdk___add",
            "--tool-arg",
            "a=20",
            "b=22",
        )
        assert called["content"][0]["text"] == "42" and not called.get("isError"), called
