"""The tool.invoked publisher: calls queue, one task publishes in batches and publishes again what
the stream did not confirm; nothing waits, losses are counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats.errors
import pytest

from gatehouse_contracts.events import ToolInvoked, decode_event, new_event
from gatehouse_gateway import tool_events
from gatehouse_gateway.tool_events import ToolEvents


class FakeJetStream:
    """Records what is published; confirms it unless ``silent`` (a stream without a leader) or
    refuses it at once when ``broken`` (no connection)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.silent = False
        self.broken = False

    async def publish_async(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[Any]:
        if self.broken:
            raise nats.errors.ConnectionClosedError
        self.published.append((subject, payload, headers))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.silent:
            ack.set_result("ack")
        return ack

    def tools(self) -> list[str]:
        return [decode_event(payload).tool for _, payload, _ in self.published]  # type: ignore[attr-defined]


class FakeNats:
    def __init__(self) -> None:
        self.js = FakeJetStream()

    def jetstream(self) -> FakeJetStream:
        return self.js


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


def _events(fake: FakeNats) -> ToolEvents:
    return ToolEvents(lambda: fake)  # type: ignore[arg-type, return-value]


async def test_queued_events_are_published_in_order_with_their_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool_events, "WINDOW", 0)
    fake = FakeNats()
    events = _events(fake)
    task = asyncio.create_task(events.run())
    sent = [_event(i) for i in range(5)]
    for event in sent:
        events.publish(event)  # returns at once: nothing is published yet
    assert fake.js.published == []
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    assert [decode_event(payload) for _, payload, _ in fake.js.published] == sent
    assert all(subject == "gatehouse.events.tool.invoked" for subject, _, _ in fake.js.published)
    assert [headers["Nats-Msg-Id"] for _, _, headers in fake.js.published] == [e.event_id for e in sent]


async def test_unconfirmed_events_are_published_again_first_and_in_order(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tool_events, "PUBLISH_TIMEOUT", 0.01)
    monkeypatch.setattr(tool_events, "RETRY_SECONDS", 0.01)
    fake = FakeNats()
    fake.js.silent = True  # the stream is electing a leader: nothing is confirmed
    events = _events(fake)
    task = asyncio.create_task(events.run())
    for i in range(3):
        events.publish(_event(i))
    with caplog.at_level(logging.WARNING, "gatehouse.gateway"):
        while len(fake.js.published) < 6:  # noqa: ASYNC110 - the fake has no event to wait on
            await asyncio.sleep(0.005)
    assert "3 tool.invoked event(s) wait for the event bus to confirm them" in caplog.text
    fake.js.silent = False  # a leader again
    events.publish(_event(3))
    while fake.js.tools()[-1] != "tool_3":  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    task.cancel()
    # every attempt sends the waiting events first, in order, with the same ids (the stream drops copies)
    assert fake.js.tools()[-4:] == ["tool_0", "tool_1", "tool_2", "tool_3"]
    assert len({headers["Nats-Msg-Id"] for _, _, headers in fake.js.published}) == 4
    assert not events._queue


async def test_close_publishes_what_is_left() -> None:
    fake = FakeNats()
    events = _events(fake)
    events.publish(_event(1))
    await events.close()
    assert fake.js.tools() == ["tool_1"]


async def test_a_full_queue_drops_and_counts_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tool_events, "QUEUE_LIMIT", 3)
    fake = FakeNats()
    events = _events(fake)
    with caplog.at_level(logging.WARNING, "gatehouse.gateway"):
        for i in range(5):
            events.publish(_event(i))
        await events.close()
    assert fake.js.tools() == ["tool_0", "tool_1", "tool_2"]
    assert "2 tool.invoked event(s) lost: the queue was full, or the gateway stopped" in caplog.text


async def test_what_no_connection_takes_at_shutdown_is_counted_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeNats()
    fake.js.broken = True
    events = _events(fake)
    for i in range(4):
        events.publish(_event(i))
    with caplog.at_level(logging.WARNING, "gatehouse.gateway"):
        await events.close()
    assert [r.getMessage() for r in caplog.records] == [
        "4 tool.invoked event(s) lost: the queue was full, or the gateway stopped"
    ]
