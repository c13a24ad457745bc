"""What the gateway's admin operations need, built once by ``app.build`` and passed first as ``deps``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient

from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.jwt import JwtValidator
from gatehouse_contracts.netguard import EndpointGuard

from .store import Store


@dataclass(frozen=True)
class Deps:
    """What gateway and target operations need: the store, the bus, and how to name URLs."""

    store: Store
    broker: NatsBroker
    public_url: str
    identity: IdentityClient
    guard: EndpointGuard
    jwt: JwtValidator
    changed: Callable[[str, str | None], Awaitable[None]]
    """Apply a change to this replica's catalog at once: (gateway id, target id or None)."""

    @property
    def nats(self) -> NatsClient:
        return self.broker.connection
