"""One sync: read the target, list its tools over MCP, store the cache and the status, tell the bus."""

from __future__ import annotations

import logging
import time

from gatehouse_contracts import lifecycle
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import (
    TargetSyncFailed,
    TargetSynchronized,
    TokenIssued,
)
from gatehouse_contracts.lifecycle import IN_PROGRESS, PendingConsent, Target
from gatehouse_contracts.mcp_client import McpClientError
from gatehouse_contracts.target_auth import m2m_headers, oauth_provider
from gatehouse_contracts.tools import InvalidTool

from . import consent
from .deps import Deps, Listed, SyncEvent, flush_outbox, list_tools_with, record, target_event
from .status import NoTargetToken, backoff, is_retryable, reason

log = logging.getLogger("gatehouse.sync")


async def _headers(deps: Deps, gateway_id: str, doc: Target) -> dict[str, str]:
    provider = oauth_provider(doc.spec.credentials)
    if provider is None:
        return {}
    try:
        return await m2m_headers(deps.identity, gateway_id, provider, doc.spec.endpoint)
    except GatehouseError as exc:
        raise NoTargetToken.refused_by_identity(exc) from None


async def fetch_tools(deps: Deps, gateway_id: str, doc: Target) -> Listed:
    return await list_tools_with(deps, doc.spec.endpoint, await _headers(deps, gateway_id, doc))


async def handle(deps: Deps, event: SyncEvent, attempt: int) -> float | None:
    """Run the sync the event asks for; the answer is a delay to retry after, or None when done."""
    doc = await deps.store.get(event.target_id)
    if doc is None or doc.generation != event.generation:
        return None  # deleted, or a newer spec whose own event will follow
    if doc.spec.inline_payload is not None:
        return None  # tools came with the request; nothing to list
    await flush_outbox(deps, doc)  # an outcome a killed worker stored but did not get to publish
    if doc.status.status not in IN_PROGRESS:
        return None  # this generation already reached a terminal status: a redelivery changes nothing
    endpoint = doc.spec.endpoint
    oauth = oauth_provider(doc.spec.credentials)
    try:
        if oauth is not None and oauth.get("grantType") == "AUTHORIZATION_CODE":
            await consent.begin(deps, event, doc, oauth)
            return None
        listed = await fetch_tools(deps, event.gateway_id, doc)
    except (McpClientError, InvalidTool, NoTargetToken) as exc:
        why = reason(exc, endpoint)
        retry = is_retryable(exc) and attempt < deps.settings.sync_max_attempts
        status = (
            lifecycle.retrying(
                doc.status, f"Attempt {attempt} of {deps.settings.sync_max_attempts} failed, retrying: {why}"
            )
            if retry
            else lifecycle.failed(doc.status, why)
        )
        log.info("sync of target %s failed (attempt %d): %s", event.target_id, attempt, why)
        await record(
            deps,
            status,
            None,
            target_event(
                TargetSyncFailed,
                event.gateway_id,
                event.target_id,
                event.generation,
                event.event_id,
                reason=why,
                attempt=attempt,
                terminal=not retry,
            ),
        )
        return backoff(attempt, deps.settings.sync_retry_base_seconds) if retry else None
    tools = listed.tools
    if await record(
        deps,
        lifecycle.ready(len(tools), time.time(), protocol_version=listed.protocol_version),
        tools,
        target_event(
            TargetSynchronized,
            event.gateway_id,
            event.target_id,
            event.generation,
            event.event_id,
            tool_count=len(tools),
        ),
    ):
        log.info(
            "target %s synchronized: %d tools, MCP %s", event.target_id, len(tools), listed.protocol_version
        )
    return None


async def handle_consent(deps: Deps, event: TokenIssued, attempt: int) -> float | None:
    """Resume the implicit sync that waited for this consent, if one did; a delay to retry, or None."""
    waiting = await _waiting_for(deps, event)
    if waiting is None:
        return None  # a gateway user's consent, or a sync already resumed
    doc, pending = waiting
    try:
        await consent.resume(deps, event, doc, pending)
    except (McpClientError, InvalidTool, NoTargetToken) as exc:
        why = reason(exc, doc.spec.endpoint)
        if is_retryable(exc) and attempt < deps.settings.sync_max_attempts:
            return backoff(attempt, deps.settings.sync_retry_base_seconds)
        await consent.fail(deps, doc, why, event.event_id)
    return None


async def _waiting_for(deps: Deps, event: TokenIssued) -> tuple[Target, PendingConsent] | None:
    """The target whose implicit sync waits for this consent, and its session, found by the id inside
    the consent's synthetic user (``lifecycle.consent_target``)."""
    target_id = lifecycle.consent_target(event.user_id)
    if not event.session_uri or target_id is None:
        return None
    doc = await deps.store.get(target_id)
    if doc is None or (pending := doc.status.pending) is None or pending.session_uri != event.session_uri:
        return None
    return doc, pending
