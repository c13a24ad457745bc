"""One sync: read the target, list its tools over MCP, store the cache and the status, tell the bus."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError, Unavailable
from gatehouse_contracts.events import (
    TargetCreated,
    TargetSyncFailed,
    TargetSynchronized,
    TargetSyncRequested,
    TargetUpdated,
    new_event,
)
from gatehouse_contracts.mcp_client import McpClientError, McpSession
from gatehouse_contracts.target_auth import m2m_headers, oauth_provider
from gatehouse_contracts.tools import InvalidTool, validate_tools

from .settings import Settings
from .status import IN_PROGRESS, NoTargetToken, backoff, failed_status, is_retryable, reason
from .store import TargetStore

log = logging.getLogger("gatehouse.sync")
SOURCE = "sync-worker"
SyncEvent = TargetCreated | TargetUpdated | TargetSyncRequested


@dataclass(frozen=True)
class Deps:
    store: TargetStore
    http: httpx.AsyncClient
    settings: Settings
    nats: Any  # () -> NatsClient, resolved at call time so a reconnect is picked up

    def bus(self) -> NatsClient:
        return self.nats()  # type: ignore[no-any-return]


async def _headers(deps: Deps, gateway_id: str, doc: dict[str, Any]) -> dict[str, str]:
    provider = oauth_provider(doc["spec"]["credentials"])
    if provider is None:
        return {}
    try:
        return await m2m_headers(
            deps.bus(), gateway_id, provider, doc["spec"]["endpoint"], deps.settings.sync_timeout_seconds
        )
    except Unavailable as exc:
        raise NoTargetToken(exc.message, retryable=True) from None
    except GatehouseError as exc:
        raise NoTargetToken(exc.message, retryable=False) from None


async def fetch_tools(deps: Deps, gateway_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    headers = await _headers(deps, gateway_id, doc)
    session = McpSession(
        deps.http, doc["spec"]["endpoint"], timeout=deps.settings.sync_timeout_seconds, headers=headers
    )
    try:
        await session.initialize()
        tools = await session.list_tools(max_tools=deps.settings.sync_max_tools)
    finally:
        await session.close()
    return validate_tools(tools, deps.settings.sync_max_tools)


async def handle(deps: Deps, event: SyncEvent, attempt: int) -> float | None:
    """Run the sync the event asks for; the answer is a delay to retry after, or None when done."""
    doc = await deps.store.get(event.target_id)
    if doc is None or doc["generation"] != event.generation:
        return None  # deleted, or a newer spec whose own event will follow
    if doc["spec"].get("inlinePayload") is not None:
        return None  # tools came with the request; nothing to list
    phase = doc["status"]["status"]
    if phase not in IN_PROGRESS:
        return None  # this generation already reached a terminal status: a redelivery changes nothing
    endpoint = doc["spec"]["endpoint"]
    try:
        tools = await fetch_tools(deps, event.gateway_id, doc)
    except (McpClientError, InvalidTool, NoTargetToken) as exc:
        why = reason(exc, endpoint)
        retry = is_retryable(exc) and attempt < deps.settings.sync_max_attempts
        status = {
            **doc["status"],
            "status": phase if retry else failed_status(phase),
            "statusReasons": [
                f"Attempt {attempt} of {deps.settings.sync_max_attempts} failed, retrying: {why}"
            ]
            if retry
            else [why],
        }
        log.info("sync of target %s failed (attempt %d): %s", event.target_id, attempt, why)
        if await deps.store.write_status(event.target_id, event.generation, status, None):
            await bus.publish_event(
                deps.bus(),
                new_event(
                    TargetSyncFailed,
                    source=SOURCE,
                    correlation_id=event.event_id,
                    gateway_id=event.gateway_id,
                    target_id=event.target_id,
                    generation=event.generation,
                    reason=why,
                    attempt=attempt,
                    terminal=not retry,
                ),
            )
        return backoff(attempt, deps.settings.sync_retry_base_seconds) if retry else None
    status = {
        "status": "READY",
        "statusReasons": [],
        "authorizationStatus": "NO_AUTHORIZATION_REQUIRED",
        "lastSynchronizedAt": time.time(),
        "toolCount": len(tools),
    }
    if await deps.store.write_status(event.target_id, event.generation, status, tools):
        log.info("target %s synchronized: %d tools", event.target_id, len(tools))
        await bus.publish_event(
            deps.bus(),
            new_event(
                TargetSynchronized,
                source=SOURCE,
                correlation_id=event.event_id,
                gateway_id=event.gateway_id,
                target_id=event.target_id,
                generation=event.generation,
                tool_count=len(tools),
            ),
        )
    return None
