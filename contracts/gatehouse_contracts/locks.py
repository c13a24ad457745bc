"""Per-key asyncio locks whose map holds only the keys in use.

A plain ``dict.setdefault(key, asyncio.Lock())`` keeps one lock for every key ever seen (every user,
every token), so a caller who varies the key grows it without bound. Here an entry lives while a
task holds or waits for its lock and is dropped by the last one out: the map is as large as the
number of keys in use at once, and a lock in use is never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # tasks holding or waiting for the lock


class KeyedLocks:
    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    @asynccontextmanager
    async def __call__(self, key: Hashable) -> AsyncIterator[None]:
        """``async with locks(key):`` runs the block while no other task holds ``key``."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
