"""What a sync needs (built once by ``app.build``), and listing a target's tools over MCP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.events import TargetCreated, TargetSyncRequested, TargetUpdated
from gatehouse_contracts.mcp_client import McpSession
from gatehouse_contracts.netguard import EndpointGuard
from gatehouse_contracts.tools import validate_tools

from .settings import Settings
from .store import TargetStore

SOURCE = "sync-worker"
SyncEvent = TargetCreated | TargetUpdated | TargetSyncRequested


@dataclass(frozen=True)
class Deps:
    store: TargetStore
    http: httpx.AsyncClient
    settings: Settings
    nats: Any  # () -> NatsClient, resolved at call time so a reconnect is picked up
    identity: IdentityClient
    guard: EndpointGuard

    def bus(self) -> NatsClient:
        return self.nats()  # type: ignore[no-any-return]


async def list_tools_with(deps: Deps, endpoint: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Open an MCP session, page through tools/list, end the session, validate the tools."""
    session = McpSession(
        deps.http, endpoint, timeout=deps.settings.sync_timeout_seconds, headers=headers, guard=deps.guard
    )
    try:
        await session.initialize()
        tools = await session.list_tools(max_tools=deps.settings.sync_max_tools)
    finally:
        await session.close()
    return validate_tools(tools, deps.settings.sync_max_tools)
