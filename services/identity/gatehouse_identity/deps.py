"""What identity's operations need, built once by ``app.build``; and who is calling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import httpx

from gatehouse_contracts.events import Event
from gatehouse_contracts.jwt import JwtValidator
from gatehouse_contracts.locks import KeyedLocks
from gatehouse_contracts.rpc import WorkloadIdentity

from .crypto import TokenSigner, Vault
from .errors import Forbidden
from .oauth import TokenEndpoint
from .providers import Providers
from .settings import Settings
from .store import SessionStore, TokenStore, WorkloadStore


@dataclass(frozen=True)
class Caller:
    """Who asks. ``privileged``: admin credentials over HTTP, or a service over the bus;
    ``service``: which service (from the RPC subject NATS lets only that service publish)."""

    privileged: bool
    service: str | None = None

    def check_workload(self, workload: WorkloadIdentity) -> None:
        """A service may act only for the workload identities of gateways (not for an admin's own)."""
        if self.service is not None and workload.owner != "gateway":
            raise Forbidden(f"the {self.service} may not act for workload identity {workload.name!r}")


@dataclass
class Deps:
    settings: Settings
    http: httpx.AsyncClient
    workloads: WorkloadStore
    providers: Providers
    sessions: SessionStore
    tokens: TokenStore
    vault: Vault
    signer: TokenSigner
    token_endpoint: TokenEndpoint
    jwt: JwtValidator
    publish: Callable[[Event], Awaitable[None]]
    m2m_cache: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)
    locks: KeyedLocks = field(default_factory=KeyedLocks)  # only the keys in use: no growth per user

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.locks(key)
