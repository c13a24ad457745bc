"""The whole stack (identity + sync-worker + gateway), and an MCP client (official SDK, v2 API)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .credentials import ADMIN_TOKEN
from .procs import DEFAULT_TIMEOUT, Proc
from .services import service_env, start_service


@dataclass
class Stack:
    """identity + sync-worker + gateway against one NATS and one MongoDB."""

    env: dict[str, str]
    nats_url: str
    mongo_url: str
    identity: Proc
    sync_worker: Proc
    gateway: Proc
    admin_token: str = ADMIN_TOKEN
    replicas: list[Proc] = field(default_factory=list)
    sync_workers: list[Proc] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return self.gateway.url or ""

    @property
    def identity_url(self) -> str:
        return self.identity.url or ""

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def gatehouse_db(self) -> str:
        return self.env["GATEHOUSE_DB"]

    @property
    def identity_db(self) -> str:
        return self.env["IDENTITY_DB"]

    @property
    def procs(self) -> list[Proc]:
        return [self.identity, self.sync_worker, self.gateway, *self.sync_workers, *self.replicas]

    def start_gateway_replica(self, *, same_public_url: bool = True, **env: str) -> Proc:
        """Another gateway process (same env, DBs, session secret) on its own port.

        By default it hands out the primary's public URL (replicas behind one address);
        talk to it directly via `.url`. Stopped with the rest at session end.
        """
        public = self.gateway.env.get("GATEWAY_PUBLIC_URL") if same_public_url else None
        proc = start_service(
            "gateway",
            {**self.env, **env},
            public_url=public,
            label=f"gateway-replica-{len(self.replicas) + 1}",
        )
        self.replicas.append(proc)
        return proc

    def start_sync_worker_replica(self, **env: str) -> Proc:
        proc = start_service(
            "sync-worker", {**self.env, **env}, label=f"sync-worker-{len(self.sync_workers) + 2}"
        )
        self.sync_workers.append(proc)
        return proc

    def restart_sync_worker(self, kill9: bool = True) -> Proc:
        """Kill (-9 by default) and restart the sync-worker on the same port and env; waits for
        /healthz and /readyz."""
        return self.sync_worker.restart(kill9=kill9)

    def restart_gateway(self, kill9: bool = False) -> Proc:
        return self.gateway.restart(kill9=kill9)

    def restart_identity(self, kill9: bool = False) -> Proc:
        return self.identity.restart(kill9=kill9)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


def start_stack(
    nats_url: str,
    mongo_url: str,
    *,
    run_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **extra_env: str,
) -> Stack:
    """Start identity, sync-worker and gateway at once (they must cope with any start order)
    and wait for each one's /healthz and /readyz."""
    env = service_env(nats_url, mongo_url, run_id=run_id, **extra_env)
    started: list[Proc] = []
    try:
        for name in ("identity", "sync-worker", "gateway"):
            started.append(start_service(name, env, wait=False))
        for p in started:
            p.wait_ready(timeout=timeout)
    except BaseException:
        for p in started:
            p.stop()
        raise
    identity, sync_worker, gateway = started
    return Stack(
        env=env,
        nats_url=nats_url,
        mongo_url=mongo_url,
        identity=identity,
        sync_worker=sync_worker,
        gateway=gateway,
    )


def mcp_client(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    mode: str = "auto",
    timeout: float = 30.0,
    **client_kwargs: Any,
) -> Any:
    """`async with mcp_client(url, headers=..., mode="legacy"|"auto") as c:` → a connected
    `mcp.Client` over Streamable HTTP with extra HTTP headers (e.g. Authorization).

    The SDK's response cache is off (`cache=None`) so every list call reaches the server.
    mode="auto" (the SDK default) first POSTs `server/discover` at protocol 2026-07-28 and falls
    back to `initialize` (2025-11-25) on any JSON-RPC error / HTTP 4xx; "legacy" goes straight
    to `initialize`.
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _cm() -> Any:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async with httpx2.AsyncClient(
            headers=dict(headers or {}), timeout=httpx2.Timeout(timeout, read=max(timeout, 300.0))
        ) as http:
            client_kwargs.setdefault("cache", None)
            async with Client(
                streamable_http_client(url, http_client=http), mode=mode, **client_kwargs
            ) as client:
                yield client

    return _cm()
