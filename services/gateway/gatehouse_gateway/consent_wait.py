"""Requests waiting for a user to finish a consent in the browser, woken by identity's events.

A modern ``tools/call`` retried with ``accept`` while the person is still at the provider waits
here for ``identity.token_issued`` (or ``identity.authorization_failed``) naming its consent
session; the bus subscription in ``subscribers`` calls ``settled``. The waiter is registered before
identity is asked, so an event arriving in between is not lost. Nothing is polled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class ConsentWaiters:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def waiting(self, session_uri: str) -> Iterator[asyncio.Event]:
        """An event set once the consent session ``session_uri`` ended (token issued or refused)."""
        event = asyncio.Event()
        self._waiting.setdefault(session_uri, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(session_uri)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[session_uri]

    def settled(self, session_uri: str) -> None:
        for event in self._waiting.get(session_uri, ()):
            event.set()
