"""Requests waiting for something the bus will tell this replica, by key; nothing is polled.

Two kinds wait here (2026-07-28): a ``tools/call`` retried after a consent, keyed by identity's
consent session, woken by ``identity.token_issued`` / ``identity.authorization_failed``
(``subscribers``); and ``subscriptions/listen`` streams, keyed by gateway id, woken when a catalog
change alters that gateway's tool list (``catalog.Catalog``). A waiter is registered before what it
waits for is looked at, so a wake-up in between is not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Waiters:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def waiting(self, key: str) -> Iterator[asyncio.Event]:
        """An event set at each ``wake(key)`` while the block runs (the waiter clears it to re-arm)."""
        event = asyncio.Event()
        self._waiting.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[key]

    def wake(self, key: str) -> None:
        for event in self._waiting.get(key, ()):
            event.set()
