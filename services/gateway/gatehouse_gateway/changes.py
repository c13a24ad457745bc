"""How this replica's memory follows catalog changes: events from the bus, and the admin API's own.

A change reloads the gateway's or the target's catalog entry. A change of a target's endpoint or
credentials also drops the upstream sessions and user tokens kept for it; a status-only change
(synchronized, failed, waiting for consent) keeps them, since the target itself is as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gatehouse_contracts.events import (
    Event,
    GatewayCreated,
    GatewayDeleted,
    GatewayUpdated,
    TargetAuthorizationRequired,
    TargetCreated,
    TargetDeleted,
    TargetSyncFailed,
    TargetSynchronized,
    TargetSyncRequested,
    TargetUpdated,
)

from .catalog import Catalog
from .in_flight import InFlight
from .sessions import EndedSessions
from .upstream import UpstreamPool
from .user_auth import UserTokens
from .waiters import Waiters


@dataclass(frozen=True)
class Replica:
    """What this replica keeps in memory, which changes elsewhere make stale."""

    catalog: Catalog
    upstream: UpstreamPool
    user_tokens: UserTokens
    ended: EndedSessions
    consents: Waiters = field(default_factory=Waiters)  # 2026-07-28 calls waiting for consent
    in_flight: InFlight = field(default_factory=InFlight)  # 2025-11-25 calls a client may cancel

    async def forget_target(self, target_id: str) -> None:
        """Drop the upstream sessions and user tokens of a target whose endpoint may have changed."""
        await self.upstream.forget(target_id)
        self.user_tokens.forget_target(target_id)

    async def changed(self, gateway_id: str, target_id: str | None) -> None:
        """Apply a change this replica's admin API just made, without waiting for its event."""
        if target_id is None:
            await self.catalog.reload_gateway(gateway_id)
        else:
            await self.catalog.reload_target(gateway_id, target_id)
            await self.forget_target(target_id)


async def apply_event(replica: Replica, event: Event) -> None:
    """Bring this replica's catalog up to date with one catalog-change event."""
    match event:
        case GatewayCreated() | GatewayUpdated() | GatewayDeleted():
            await replica.catalog.reload_gateway(event.gateway_id)
        case TargetDeleted():
            await replica.catalog.drop_target(event.gateway_id, event.target_id)
            await replica.forget_target(event.target_id)
        case TargetSynchronized() | TargetSyncFailed() | TargetAuthorizationRequired():
            await replica.catalog.reload_target(event.gateway_id, event.target_id)
        case TargetCreated() | TargetUpdated() | TargetSyncRequested():
            await replica.catalog.reload_target(event.gateway_id, event.target_id)
            await replica.forget_target(event.target_id)
