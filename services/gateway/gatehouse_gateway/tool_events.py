"""``tool.invoked`` off the request path: a call appends its event to a bounded in-process queue and
returns; one background task hands what has queued up to NATS, without waiting for the stream.

What this guarantees (docs/audit.md, "What reaches the audit trail"), the same as when each call
published its own event: every call makes exactly one event, published at most once.
- NATS reachable: the event is in the stream within milliseconds of the call.
- NATS away (the client reconnects): events wait in the NATS client's reconnect buffer (2 MiB,
  several thousand events) and are sent when it is back; beyond that they are lost, and a warning
  counts them.
- Shutdown (SIGTERM): what is queued is published and flushed before the connection closes.
- The process dies (kill -9, OOM): what is still queued or buffered is lost, at most the last
  few milliseconds' worth.
- The queue (``QUEUE_LIMIT``) fills only if the publisher cannot keep up; a call never waits for
  it: its event is dropped and counted instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from nats.aio.client import Client as NatsClient

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import ToolInvoked

log = logging.getLogger("gatehouse.gateway")

QUEUE_LIMIT = 10_000  # events (about 3 MB); a moment's traffic, the publisher empties it every turn
WARN_EVERY = 10.0  # seconds between two warnings about lost events
FLUSH_TIMEOUT = 2  # seconds the shutdown waits for NATS to take what is left


class ToolEvents:
    def __init__(self, nats: Callable[[], NatsClient]) -> None:
        self._nats = nats  # resolved per flush, so a reconnect is picked up
        self._queue: deque[ToolInvoked] = deque()
        self._queued = asyncio.Event()
        self._lost = 0
        self._why = ""
        self._warned_at = 0.0

    def publish(self, event: ToolInvoked) -> None:
        """Queue the event for the publisher; never waits."""
        if len(self._queue) >= QUEUE_LIMIT:
            self._lose("the queue is full")
            return
        self._queue.append(event)
        self._queued.set()

    async def run(self) -> None:
        """Publish whatever has queued up, each time something has (the background task)."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            await self._flush()

    async def close(self) -> None:
        """Publish what is left and wait until NATS has it (call before the connection closes)."""
        await self._flush()
        with contextlib.suppress(Exception):
            await self._nats().flush(timeout=FLUSH_TIMEOUT)

    async def _flush(self) -> None:
        nats = self._nats()
        while self._queue:
            event = self._queue.popleft()
            try:
                await bus.publish_event_nowait(nats, event)
            except GatehouseError as exc:
                self._lose(exc.message)
        if self._lost and time.monotonic() - self._warned_at >= WARN_EVERY:
            log.warning("%d tool.invoked event(s) not published: %s", self._lost, self._why)
            self._lost = 0
            self._warned_at = time.monotonic()

    def _lose(self, why: str) -> None:
        self._lost += 1
        self._why = why
