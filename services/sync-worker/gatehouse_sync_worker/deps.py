"""What a sync needs (built once by ``app.build``), and listing a target's tools over MCP."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client as NatsClient

from gatehouse_contracts import bus
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.events import (
    Event,
    TargetAuthorizationRequired,
    TargetCreated,
    TargetSyncFailed,
    TargetSynchronized,
    TargetSyncRequested,
    TargetUpdated,
    decode_event,
    encode_event,
    new_event,
)
from gatehouse_contracts.lifecycle import Target, TargetStatus
from gatehouse_contracts.mcp_client import McpHttp, McpSession, is_modern
from gatehouse_contracts.tools import validate_tools, with_valid_headers

from .settings import Settings
from .store import TargetStore

SOURCE = "sync-worker"
log = logging.getLogger("gatehouse.sync")
E = TypeVar("E", bound=Event)
SyncEvent = TargetCreated | TargetUpdated | TargetSyncRequested
Outcome = TargetSynchronized | TargetSyncFailed | TargetAuthorizationRequired


@dataclass(frozen=True)
class Deps:
    store: TargetStore
    http: McpHttp
    settings: Settings
    nats: Any  # () -> NatsClient, resolved at call time so a reconnect is picked up
    identity: IdentityClient

    def bus(self) -> NatsClient:
        return self.nats()  # type: ignore[no-any-return]


class Listed(msgspec.Struct, frozen=True):
    """A target's validated tools, and the MCP version it spoke (its era, recorded on the target)."""

    tools: list[dict[str, Any]]
    protocol_version: str


async def list_tools_with(deps: Deps, endpoint: str, headers: dict[str, str]) -> Listed:
    """Open an MCP session in the era the target speaks (probed: ``McpSession.open``), page through
    tools/list, end the session, validate the tools."""
    session = McpSession(deps.http, endpoint, timeout=deps.settings.sync_timeout_seconds, headers=headers)
    try:
        version = await session.open()
        tools = await session.list_tools(max_tools=deps.settings.sync_max_tools)
    finally:
        await session.close()
    tools = validate_tools(tools, deps.settings.sync_max_tools)
    if is_modern(version):
        tools, dropped = with_valid_headers(tools)
        for why in dropped:  # the revision's rule for clients: leave the tool out, warn
            log.warning("a tool of a 2026-07-28 target is left out: %s", why)
    return Listed(tools, version)


def target_event(
    cls: type[E], gateway_id: str, target_id: str, generation: int, correlation_id: str, **fields: Any
) -> E:
    """An outcome event about one target generation, caused by ``correlation_id``."""
    return new_event(
        cls,
        source=SOURCE,
        correlation_id=correlation_id,
        gateway_id=gateway_id,
        target_id=target_id,
        generation=generation,
        **fields,
    )


async def record(
    deps: Deps,
    status: TargetStatus,
    tools: list[dict[str, Any]] | None,
    event: Outcome,
    *,
    expect_status: str | None = None,
) -> bool:
    """Store a sync's outcome and its event together (an outbox in the same update), publish the
    event, clear the outbox. A worker killed in between leaves the event stored; whoever handles the
    target's next delivery publishes it (same event id: JetStream drops a double). False when the
    outcome is stale (a newer spec or status) and nothing was stored. The target and generation
    are the event's."""
    if not await deps.store.write_status(
        event.target_id,
        event.generation,
        status,
        tools,
        outbox=(event.event_id, encode_event(event)),
        expect_status=expect_status,
    ):
        return False
    await bus.publish_event(deps.bus(), event)
    await deps.store.clear_outbox(event.target_id, event.event_id)
    return True


async def flush_outbox(deps: Deps, doc: Target) -> None:
    """Publish an outcome event a killed worker stored but did not publish."""
    if doc.outbox is None:
        return
    event = decode_event(doc.outbox)
    await bus.publish_event(deps.bus(), event)
    await deps.store.clear_outbox(doc.id, event.event_id)
