"""Anonymous misses: the first of an interval goes out, the rest as one counted event."""

from __future__ import annotations

import asyncio

from gatehouse_contracts.events import AuthorizationFailed, Event, TokenRevoked, new_event
from gatehouse_identity.misses import MissAggregator


async def test_misses_naming_no_session_are_counted_per_interval() -> None:
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    aggregate = MissAggregator(publish, 0.05)
    for _ in range(5):
        await aggregate(new_event(AuthorizationFailed, source="identity", reason="unknown_session"))
    known = new_event(AuthorizationFailed, source="identity", reason="replayed", workload_name="gw")
    other = new_event(
        TokenRevoked,
        source="identity",
        workload_name="w",
        user_id="u",
        provider_name="p",
        scopes=[],
        reason="r",
    )
    await aggregate(known)
    await aggregate(other)
    assert [type(e).__name__ for e in published] == [
        "AuthorizationFailed",
        "AuthorizationFailed",
        "TokenRevoked",
    ]
    await asyncio.sleep(0.1)
    summary = published[-1]
    assert isinstance(summary, AuthorizationFailed) and (summary.reason, summary.count) == (
        "unknown_session",
        4,
    )
    await aggregate(new_event(AuthorizationFailed, source="identity", reason="unknown_session"))
    assert len(published) == 5  # a new interval begins with a published miss
