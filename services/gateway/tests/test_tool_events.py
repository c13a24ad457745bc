"""The tool.invoked publisher: calls queue, one task publishes; nothing waits, losses are counted."""

from __future__ import annotations

import asyncio
import logging

import nats.errors
import pytest

from gatehouse_contracts.events import ToolInvoked, decode_event, new_event
from gatehouse_gateway import tool_events
from gatehouse_gateway.tool_events import ToolEvents


class FakeNats:
    """Records what is published; refuses once ``broken`` (a full reconnect buffer)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.flushed = 0
        self.broken = False

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        if self.broken:
            raise nats.errors.OutboundBufferLimitError
        self.published.append((subject, payload, headers))

    async def flush(self, timeout: int) -> None:
        self.flushed += 1


def _event(i: int) -> ToolInvoked:
    return new_event(
        ToolInvoked,
        source="gateway",
        gateway_id="g",
        target_id="t",
        tool=f"tool_{i}",
        user="",
        outcome="success",
        duration_ms=1.0,
    )


async def _publisher(fake: FakeNats) -> tuple[ToolEvents, asyncio.Task[None]]:
    events = ToolEvents(lambda: fake)
    return events, asyncio.create_task(events.run())


async def test_queued_events_are_published_in_order_with_their_ids() -> None:
    fake = FakeNats()
    events, task = await _publisher(fake)
    sent = [_event(i) for i in range(5)]
    for event in sent:
        events.publish(event)  # returns at once: nothing is published yet
    assert fake.published == []
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    assert [decode_event(payload) for _, payload, _ in fake.published] == sent
    assert all(subject == "gatehouse.events.tool.invoked" for subject, _, _ in fake.published)
    assert [headers["Nats-Msg-Id"] for _, _, headers in fake.published] == [e.event_id for e in sent]


async def test_close_publishes_what_is_left_and_flushes() -> None:
    fake = FakeNats()
    events = ToolEvents(lambda: fake)
    events.publish(_event(1))
    await events.close()
    assert len(fake.published) == 1 and fake.flushed == 1


async def test_a_full_queue_drops_and_counts_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tool_events, "QUEUE_LIMIT", 3)
    fake = FakeNats()
    events = ToolEvents(lambda: fake)
    for i in range(5):
        events.publish(_event(i))
    with caplog.at_level(logging.WARNING, "gatehouse.gateway"):
        await events.close()
    assert [decode_event(p).tool for _, p, _ in fake.published] == ["tool_0", "tool_1", "tool_2"]
    assert "2 tool.invoked event(s) not published: the queue is full" in caplog.text


async def test_refused_publishes_are_counted_in_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeNats()
    fake.broken = True
    events = ToolEvents(lambda: fake)
    for i in range(4):
        events.publish(_event(i))
    with caplog.at_level(logging.WARNING, "gatehouse.gateway"):
        await events.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "4 tool.invoked event(s) not published: the event bus is unavailable (OutboundBufferLimitError)"
    ]
