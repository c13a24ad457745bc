"""The handshake era's tools/calls running on this replica, so that a client's
``notifications/cancelled`` cancels the one it names, whichever replica the notification reaches.

A call is kept by (session nonce, request id) with the task running it; cancelling the task cancels
the call at the target (``mcp_client``). A notification naming no call running here is broadcast
(``gatehouse.broadcast.mcp_request_cancelled``, core NATS) and every replica cancels the call if it
runs it. One naming a call already answered changes nothing, as 2025-11-25 allows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

Key = tuple[str, str | int]


class CancelledRequest(msgspec.Struct, array_like=True, frozen=True):
    """A client cancelled its request ``request_id`` in session ``nonce`` (the bus's message)."""

    nonce: str
    request_id: str | int


class InFlight:
    def __init__(self) -> None:
        self._tasks: dict[Key, asyncio.Task[Any] | None] = {}
        self._cancelled: set[Key] = set()

    def add(self, nonce: str, msg_id: Any) -> Key:
        key = (nonce, msg_id)
        self._tasks[key] = asyncio.current_task()
        return key

    def done(self, key: Key) -> None:
        self._tasks.pop(key, None)

    def cancel(self, nonce: str, msg_id: str | int) -> bool:
        """Cancel the call if it runs here; whether it did."""
        key = (nonce, msg_id)
        task = self._tasks.pop(key, None)
        if task is None:
            return False
        self._cancelled.add(key)
        task.cancel()
        return True

    def cancelled(self, key: Key) -> bool:
        """Whether the client cancelled it (then the task goes on, to answer it: uncancelled)."""
        if key not in self._cancelled:
            return False
        self._cancelled.discard(key)
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True
