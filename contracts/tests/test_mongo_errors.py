"""How database failures reach the services: as ``Unavailable``, never as a stray cancellation."""

from __future__ import annotations

import asyncio

import pytest

from gatehouse_contracts.errors import Unavailable
from gatehouse_contracts.mongo import translate_errors


async def test_a_cancellation_leaked_by_the_driver_is_a_lost_connection() -> None:
    async def query() -> None:
        async with translate_errors():
            raise asyncio.CancelledError  # what pymongo raises when its read is cut off

    with pytest.raises(Unavailable, match="connection was lost"):
        await asyncio.create_task(query())


async def test_a_real_cancellation_still_cancels() -> None:
    started = asyncio.Event()

    async def query() -> None:
        async with translate_errors():
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(query())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
