"""KeyedLocks: mutual exclusion per key, and a map that holds only the keys in use."""

from __future__ import annotations

import asyncio

from gatehouse_contracts.locks import KeyedLocks


async def test_a_key_is_held_by_one_task_and_forgotten_when_free() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    entered = asyncio.Event()

    async def hold(name: str) -> None:
        async with locks("k"):
            order.append(f"{name} in")
            entered.set()
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    first = asyncio.create_task(hold("a"))
    await entered.wait()
    second = asyncio.create_task(hold("b"))
    await asyncio.sleep(0)
    assert len(locks) == 1  # held and waited for: kept
    await asyncio.gather(first, second)
    assert order == ["a in", "a out", "b in", "b out"]
    assert len(locks) == 0


async def test_many_keys_leave_nothing_behind() -> None:
    locks = KeyedLocks()
    for i in range(10_000):
        async with locks(f"user-{i}"):
            pass
    assert len(locks) == 0


async def test_a_cancelled_waiter_does_not_drop_the_held_lock() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks("k"):
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 1  # the holder still has it
    release.set()
    await held
    assert len(locks) == 0
