"""``tool.invoked`` off the request path: a call appends its event to a bounded in-process queue and
returns; one background task publishes what has queued up, in batches, and publishes again what the
stream did not confirm.

What this guarantees (docs/audit.md, "What reaches the audit trail"): every call makes exactly one
event, and it reaches the stream unless the gateway process dies first or the queue overflows.
- NATS reachable: the event is in the stream within milliseconds of the call; a batch of
  confirmations costs one reply each, with no round trip per event.
- NATS away, or a NATS cluster electing a new leader for the stream after a node died: events wait
  here and are published again every ``RETRY_SECONDS`` until the stream confirms them; a warning
  says how many wait. A copy the stream already holds is dropped (``Nats-Msg-Id``, 2 minutes); the
  audit trail stores each event id once whatever happens.
- Shutdown (SIGTERM): what is queued is published, and confirmed for up to ``CLOSE_TIMEOUT``.
- The process dies (kill -9, OOM): what is still queued is lost, at most the last moments' worth.
- The queue (``QUEUE_LIMIT``) fills only while NATS is away under load; a call never waits for it:
  its event is dropped and counted instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from gatehouse_contracts import bus
from gatehouse_contracts.events import ToolInvoked

log = logging.getLogger("gatehouse.gateway")

QUEUE_LIMIT = 10_000  # events (about 3 MB): a few seconds of NATS away at full load
BATCH = 1_000  # events published before waiting for their confirmations
WINDOW = 0.01  # seconds the calls of a moment gather, so they leave in one write to NATS, not one each
PUBLISH_TIMEOUT = 5.0  # seconds a batch waits for its confirmations
RETRY_SECONDS = 1.0  # between two attempts while the stream confirms nothing
CLOSE_TIMEOUT = 2.0  # seconds the shutdown waits for the stream to confirm what is left
WARN_EVERY = 10.0  # seconds between two warnings about waiting or lost events


class ToolEvents:
    def __init__(self, nats: Callable[[], NatsClient]) -> None:
        self._nats = nats  # resolved per batch, so a new connection is picked up
        self._js: tuple[NatsClient, JetStreamContext] | None = None
        self._queue: deque[ToolInvoked] = deque()
        self._queued = asyncio.Event()
        self._lost = 0
        self._warned_at = 0.0

    def publish(self, event: ToolInvoked) -> None:
        """Queue the event for the publisher; never waits."""
        if len(self._queue) >= QUEUE_LIMIT:  # only while the publisher retries: it warns
            self._lost += 1
            return
        self._queue.append(event)
        self._queued.set()

    async def run(self) -> None:
        """Publish whatever has queued up, each time something has (the background task)."""
        while True:
            await self._queued.wait()
            await asyncio.sleep(WINDOW)  # a socket write per call was a seventh of its CPU (BENCHMARKS.md §8)
            self._queued.clear()
            while self._queue:
                if not await self._publish_batch(PUBLISH_TIMEOUT):
                    self._warn()
                    await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        """Publish what is left, and wait a moment for the stream to confirm it (before the
        connection closes); what it does not confirm by then is lost, and the log says so."""
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while self._queue and time.monotonic() < deadline:
            if not await self._publish_batch(max(0.1, deadline - time.monotonic())):
                break
        if self._queue:
            self._lost += len(self._queue)
            self._queue.clear()
        self._warned_at = 0.0
        self._warn()

    async def _publish_batch(self, timeout: float) -> bool:
        """Publish the oldest events; those the stream did not confirm go back to the front, in order."""
        batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        unconfirmed = await bus.publish_confirmed(self._jetstream(), batch, timeout=timeout)
        self._queue.extendleft(reversed(unconfirmed))
        return not unconfirmed

    def _jetstream(self) -> JetStreamContext:
        # one context per connection: it holds the one reply subscription of the confirmations
        nc = self._nats()
        if self._js is None or self._js[0] is not nc:
            self._js = (nc, nc.jetstream())
        return self._js[1]

    def _warn(self) -> None:
        if time.monotonic() - self._warned_at < WARN_EVERY or not (self._lost or self._queue):
            return
        if self._queue:
            log.warning("%d tool.invoked event(s) wait for the event bus to confirm them", len(self._queue))
        if self._lost:
            log.warning(
                "%d tool.invoked event(s) lost: the queue was full, or the gateway stopped", self._lost
            )
            self._lost = 0
        self._warned_at = time.monotonic()
