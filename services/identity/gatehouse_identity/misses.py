"""Refusals anyone can cause are not each an audit event.

An ``identity.authorization_failed`` that names no session (an unknown session URI or state: the
browser callback and a completion take them from anyone) would let a caller fill the audit stream
with one request each. Per reason, the first such refusal of an interval is published as it is;
the rest of the interval are counted and published as one event with ``count`` when it ends. The
held counts are one per reason (a fixed set), so nothing here grows with traffic.
Every other event, and every refusal about a known session, goes out at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gatehouse_contracts.events import AuthorizationFailed, AuthorizationFailure, Event, new_event

log = logging.getLogger("gatehouse.identity.misses")
Publish = Callable[[Event], Awaitable[None]]


class MissAggregator:
    """A ``publish`` that aggregates anonymous misses over ``interval`` seconds (0: publish each)."""

    def __init__(self, publish: Publish, interval: float) -> None:
        self._publish = publish
        self._interval = interval
        self._held: dict[AuthorizationFailure, int] = {}  # reason -> misses since its interval began
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, event: Event) -> None:
        if self._interval <= 0 or not isinstance(event, AuthorizationFailed) or event.workload_name:
            await self._publish(event)
            return
        held = self._held.get(event.reason)
        if held is not None:
            self._held[event.reason] = held + 1
            return
        self._held[event.reason] = 0
        asyncio.get_running_loop().call_later(self._interval, self._flush, event.reason)
        await self._publish(event)

    def _flush(self, reason: AuthorizationFailure) -> None:
        count = self._held.pop(reason, 0)
        if count:
            log.info("%d more refusals (%s) in the last %gs", count, reason, self._interval)
            summary = new_event(AuthorizationFailed, source="identity", reason=reason, count=count)
            task = asyncio.ensure_future(self._publish(summary))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
