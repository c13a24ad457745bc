"""What a replica does beside answering requests: telling the other replicas, and catching up.

An ended session is broadcast at once (for the running replicas) and stored (for those started
later), without holding up the request that ended it (``tool.invoked`` events have their own
publisher, tool_events.py). After a NATS reconnect, and every ``GATEWAY_CATALOG_REFRESH_SECONDS``, the replica
reloads what it may have missed while cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient

from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.subjects import MCP_REQUEST_CANCELLED, MCP_SESSION_ENDED

from .catalog import Catalog
from .in_flight import CancelledRequest
from .sessions import EndedSessions, SessionClaims
from .store import Store

log = logging.getLogger("gatehouse.gateway")


class Background:
    def __init__(
        self, store: Store, catalog: Catalog, ended: EndedSessions, nats: Callable[[], NatsClient]
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._ended = ended
        self._nats = nats  # resolved per use, so a reconnect is picked up
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # (the loop keeps only a weak reference to a task)
        task.add_done_callback(self._tasks.discard)

    async def reload_ended_sessions(self) -> None:
        try:
            self._ended.load(await self._store.ended_sessions_now(time.time()))
        except GatehouseError as exc:
            log.warning("could not read the ended MCP sessions: %s", exc.message)

    async def reconnected(self) -> None:
        """Catch up on the broadcasts missed while cut off from NATS."""
        self._spawn(self._catalog.reload_all())
        self._spawn(self.reload_ended_sessions())

    async def request_cancelled(self, request: CancelledRequest) -> None:
        """Tell the other replicas; the one running the call cancels it (in_flight.py). Lost if
        NATS is away, as a notification may be."""
        with contextlib.suppress(Exception):
            await self._nats().publish(MCP_REQUEST_CANCELLED, msgspec.json.encode(request))

    async def session_ended(self, claims: SessionClaims, expires_at: float) -> None:
        """Tell the running replicas at once, and keep it for replicas started later (in the
        background: a DELETE does not wait for MongoDB)."""
        with contextlib.suppress(Exception):
            await self._nats().publish(MCP_SESSION_ENDED, msgspec.json.encode(claims))
        self._spawn(self._store_ended_session(claims.nonce, expires_at))

    async def _store_ended_session(self, nonce: str, expires_at: float) -> None:
        try:
            await self._store.end_session(nonce, expires_at)
        except GatehouseError as exc:
            log.warning(
                "ended MCP session not stored (a replica started later may accept it): %s", exc.message
            )

    async def refresh_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            started = time.monotonic()
            try:
                await self._catalog.reload_all()
            except GatehouseError as exc:
                log.warning("periodic catalog reload failed: %s", exc.message)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # shutdown
                log.error("periodic catalog reload was cancelled from inside; retrying next round")
            except Exception:  # a background loop must not die quietly
                log.exception("periodic catalog reload failed unexpectedly")
            else:
                if (took := time.monotonic() - started) > every:
                    # the longest a missed change stays unseen grows by as much (docs/mcp-clients.md)
                    log.warning("periodic catalog reload took %.1fs (it runs every %gs)", took, every)
