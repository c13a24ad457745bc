"""What a replica does beside answering requests: telling the other replicas, and catching up.

An ended session is broadcast at once (for the running replicas) and stored (for those started
later); ``tool.invoked`` events are published without waiting, gathered for ``EVENT_BATCH_SECONDS``
so that the calls of that window leave in one write to NATS, not one each (a socket write per
call was a seventh of the gateway's CPU per call). Neither holds up the request that caused it.
After a NATS reconnect, and every ``GATEWAY_CATALOG_REFRESH_SECONDS``, the replica reloads what
it may have missed while cut off.
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

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import Event
from gatehouse_contracts.subjects import MCP_SESSION_ENDED

from .catalog import Catalog
from .sessions import EndedSessions, SessionClaims
from .store import Store

log = logging.getLogger("gatehouse.gateway")

EVENT_BATCH_SECONDS = 0.01  # how long a tool.invoked event waits for others to leave with


class Background:
    def __init__(
        self, store: Store, catalog: Catalog, ended: EndedSessions, nats: Callable[[], NatsClient]
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._ended = ended
        self._nats = nats  # resolved per use, so a reconnect is picked up
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: list[Event] = []  # tool.invoked events waiting for their batch to leave

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

    def publish(self, event: Event) -> None:
        """Publish an event without waiting (``tool.invoked``: one per call), with the others of
        its batch."""
        self._outbox.append(event)
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_later(EVENT_BATCH_SECONDS, self._send_outbox)

    def _send_outbox(self) -> None:
        events, self._outbox = self._outbox, []
        if events:
            self._spawn(self._publish_quietly(events))

    async def _publish_quietly(self, events: list[Event]) -> None:
        nats = self._nats()
        for event in events:  # NATS writes what the loop queued meanwhile in one go
            try:
                await bus.publish_event_nowait(nats, event)
            except GatehouseError as exc:
                log.warning("could not publish %s: %s", type(event).__name__, exc.message)

    async def flush(self) -> None:
        """Publish the waiting events now (at shutdown, before the NATS connection closes)."""
        events, self._outbox = self._outbox, []
        await self._publish_quietly(events)

    async def refresh_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._catalog.reload_all()
            except GatehouseError as exc:
                log.warning("periodic catalog reload failed: %s", exc.message)
            except Exception:  # a background loop must not die quietly
                log.exception("periodic catalog reload failed unexpectedly")
