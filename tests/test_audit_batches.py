"""The audit service at bus speed, against real processes: it stores events in batches, each
event exactly once, through a burst of tool calls, a kill -9 in the middle of a batch, a MongoDB
outage and a NATS outage.

This module gives the durable ``audit`` consumer a short ack wait (a batch cut off by a kill is
redelivered after it), so it deletes the consumer before and after (config/nats.conf lets the
tests' admin user), and stores into a database of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import harness
import httpx
import msgspec
import nats
import pytest
from admin import Admin
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient
from rawmcp import open_session, rpc

from gatehouse_contracts.bus import publish_confirmed
from gatehouse_contracts.events import ToolInvoked, encode_event, new_event
from gatehouse_contracts.subjects import STREAM, event_subject

ACK_WAIT = "2"  # seconds: a batch whose acks never came is redelivered this soon
TICKS = os.sysconf("SC_CLK_TCK")


class Audited:
    """An audit service storing into its own database, a gateway with one target, the bus."""

    def __init__(self, stack: Any, nc: Any, mongo: AsyncMongoClient[dict[str, Any]]) -> None:
        self.stack = stack
        self.nc = nc
        self.js = nc.jetstream()
        self.db = f"gatehouse_audit_batches_{uuid.uuid4().hex[:8]}"
        self.events = mongo[self.db]["events"]
        self.proc: harness.Proc | None = None
        self.gateway: dict[str, Any] = {}

    async def start(self) -> harness.Proc:
        await _delete_consumer(self.js)  # so the new one takes this module's ack wait
        self.proc = harness.start_audit(self.stack, self.db, "audit-batches", AUDIT_ACK_WAIT_SECONDS=ACK_WAIT)
        return self.proc

    async def publish(self, gateway_id: str, n: int) -> list[str]:
        """``n`` tool.invoked events, published as the gateway does; their ids."""
        events = [_tool_invoked(gateway_id, i) for i in range(n)]
        assert not await publish_confirmed(self.js, events)
        return [event.event_id for event in events]

    async def consumer(self) -> Any:
        return await self.js.consumer_info(STREAM, harness.AUDIT_DURABLE)

    async def first_batch_stored(self, before: Any) -> None:
        """Until the consumer acknowledged something after ``before`` (its info then)."""

        async def moved() -> bool:
            return bool((await self.consumer()).ack_floor.stream_seq > before.ack_floor.stream_seq)

        await _until(moved, 30, "a first batch stored", every=0.005)

    async def stored(self, gateway_id: str) -> int:
        """The gateway's tool.invoked records."""
        return await self.events.count_documents(_calls(gateway_id))

    async def all_stored(self, gateway_id: str, ids: list[str], timeout: float = 90) -> None:
        """Until every one of ``ids`` is stored and the consumer has acknowledged everything; then
        each is there exactly once and no other call of this gateway is."""
        await _until(lambda: self._count_is(gateway_id, len(ids)), timeout, f"{len(ids)} events stored")
        await harness.audit_caught_up(self.js, timeout)
        docs = await self.events.find(_calls(gateway_id), {"_id": 1}).to_list()
        assert sorted(d["_id"] for d in docs) == sorted(ids)

    async def _count_is(self, gateway_id: str, n: int) -> bool:
        count = await self.stored(gateway_id)
        assert count <= n, f"{count} records for {n} events"
        return count == n


@pytest.fixture(scope="module")
async def audited(stack: Any, sdk_server: Any, mongo_server: Any) -> AsyncIterator[Audited]:
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    audit = Audited(stack, nc, mongo)
    try:
        await audit.start()
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            audit.gateway = await admin.create_gateway()
            await admin.ready_target(audit.gateway["gatewayId"], "burst", sdk_server.url)
        yield audit
    finally:
        if audit.proc is not None:
            audit.proc.stop()
        await _delete_consumer(audit.js)  # the next audit service creates its own
        if isinstance(mongo_server, harness.External):
            await mongo.drop_database(audit.db)
        await mongo.close()
        await nc.close()


async def test_a_burst_of_tool_calls_is_audited_exactly_once(audited: Audited) -> None:
    gateway_id, url = audited.gateway["gatewayId"], audited.gateway["gatewayUrl"]
    sessions, calls = 8, 40

    async def client(http: httpx.AsyncClient, n: int) -> None:
        session = await open_session(http, url)
        for i in range(calls):
            text = f"{n}-{i}"
            assert await _echo(http, url, session, text) == text

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http, n) for n in range(sessions)))
    total = sessions * calls
    await _until(lambda: audited._count_is(gateway_id, total), 60, f"{total} tool calls audited")
    await harness.audit_caught_up(audited.js)
    docs = await audited.events.find(_calls(gateway_id)).to_list()
    assert len(docs) == total
    assert {d["outcome"] for d in docs} == {"success"} and all(d["_id"] == d["eventId"] for d in docs)
    # they came in batches: many records share one write's storedAt
    assert len({d["audit"]["storedAt"] for d in docs}) < total


async def test_a_published_burst_and_its_duplicates_are_stored_once(audited: Audited) -> None:
    gateway_id = f"burst-{uuid.uuid4().hex[:8]}"
    ids = await audited.publish(gateway_id, 3000)
    # the first 100 again under other message ids, so the stream really holds them twice
    for i, event_id in enumerate(ids[:100]):
        event = _tool_invoked(gateway_id, i, event_id)
        again = {"Nats-Msg-Id": uuid.uuid4().hex}
        await audited.js.publish(event_subject(event), encode_event(event), headers=again)
    await audited.all_stored(gateway_id, ids)


async def test_kill_9_mid_batch_loses_nothing_and_stores_nothing_twice(audited: Audited) -> None:
    assert audited.proc is not None
    gateway_id = f"kill-{uuid.uuid4().hex[:8]}"
    before = await audited.consumer()
    audited.proc.kill(signal.SIGSTOP)  # hold it while the burst queues up, then let it work
    ids = await audited.publish(gateway_id, 6000)
    audited.proc.kill(signal.SIGCONT)
    await audited.first_batch_stored(before)
    # kill it while it holds a batch it has not acknowledged: stopped first (a stopped process acks
    # nothing), killed only when the consumer shows deliveries pending, else let go and tried again
    try:
        for _ in range(2000):
            audited.proc.kill(signal.SIGSTOP)
            at_kill = await audited.consumer()
            if at_kill.num_ack_pending > 0:
                break
            audited.proc.kill(signal.SIGCONT)
            await asyncio.sleep(0.002)
        audited.proc.kill(signal.SIGKILL)
        last = (await audited.js.stream_info(STREAM)).state.last_seq
        assert at_kill.ack_floor.stream_seq < last, "the kill came after the burst was stored"
        assert at_kill.num_ack_pending > 0, "no moment with a batch delivered and not acknowledged"
    finally:
        audited.proc.kill(signal.SIGKILL)
        audited.proc.start().wait_ready()  # the next tests need it, whatever happened here
    await audited.all_stored(gateway_id, ids)
    after = await audited.consumer()
    # the cut-off batch was delivered again (more deliveries than messages), and not stored twice
    deliveries = after.delivered.consumer_seq - before.delivered.consumer_seq
    assert deliveries > after.delivered.stream_seq - before.delivered.stream_seq


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URL")), reason="an external MongoDB cannot be stopped here")
async def test_a_mongodb_outage_mid_batch_is_waited_out(audited: Audited, mongo_server: Any) -> None:
    proc = audited.proc
    assert proc is not None and proc.pid is not None
    gateway_id = f"outage-{uuid.uuid4().hex[:8]}"
    log_from = len(proc.log_text())
    before = await audited.consumer()
    proc.kill(signal.SIGSTOP)
    ids = await audited.publish(gateway_id, 4000)
    proc.kill(signal.SIGCONT)
    await audited.first_batch_stored(before)
    mongo_server.kill()
    try:
        ids += await audited.publish(gateway_id, 1000)
        await _until(lambda: _logged(proc, log_from, "not stored"), 30, "the audit service logs the outage")
        cpu, started = _cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(4)  # the outage goes on: the service waits, it does not spin
        busy = (_cpu_seconds(proc.pid) - cpu) / (time.monotonic() - started)
        assert busy < 0.3, f"the audit service used {busy:.0%} of a core while MongoDB was down"
        assert proc.alive
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{proc.url}/healthz")).status_code == 200
            ready = await http.get(f"{proc.url}/readyz")
            assert ready.status_code == 503 and ready.json() == {"nats": True, "mongodb": False}
    finally:
        mongo_server.start()
        mongo_server.wait_port()
    line = next(line for line in proc.log_text()[log_from:].splitlines() if "not stored" in line)
    assert "database" in line, line
    await audited.all_stored(gateway_id, ids, timeout=120)
    assert proc.alive
    await _stack_ready(audited.stack)  # for the tests after this one


async def test_a_tool_call_during_a_nats_outage_is_audited_when_nats_returns(
    audited: Audited, nats_server: Any
) -> None:
    gateway_id, url = audited.gateway["gatewayId"], audited.gateway["gatewayUrl"]
    before = await audited.stored(gateway_id)
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url)
        await audited.nc.flush()
        nats_server.kill()
        try:
            assert await _echo(http, url, session, "dark") == "dark"
        finally:
            nats_server.start()
            nats_server.wait_http()
    # the gateway's NATS client kept the event while reconnecting; the audit service reconnects too
    await _until(lambda: audited._count_is(gateway_id, before + 1), 60, "the call audited")
    await _stack_ready(audited.stack)  # for the tests after this one


# --- helpers ----------------------------------------------------------------------------------


async def _echo(http: httpx.AsyncClient, url: str, session: str, text: str) -> str:
    call = {"name": "burst___echo", "arguments": {"text": text}}
    answer = await rpc(http, url, session, "tools/call", call)
    return str(answer["result"]["content"][0]["text"])


def _calls(gateway_id: str) -> dict[str, str]:
    return {"gatewayId": gateway_id, "type": "tool.invoked"}


def _tool_invoked(gateway_id: str, i: int, event_id: str | None = None) -> ToolInvoked:
    event = new_event(
        ToolInvoked,
        source="gateway",
        gateway_id=gateway_id,
        target_id="T",
        tool=f"tool_{i % 10}",
        user="alice",
        outcome="success",
        duration_ms=1.5,
    )
    return event if event_id is None else msgspec.structs.replace(event, event_id=event_id)


async def _until(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> None:
    """Until ``condition()`` holds (neither the database nor the consumer says when: polled)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(every)


async def _logged(proc: harness.Proc, start: int, text: str) -> bool:
    return text in proc.log_text()[start:]


async def _stack_ready(stack: Any, timeout: float = 60) -> None:
    async def ready() -> bool:
        async with httpx.AsyncClient() as http:
            services = (stack.gateway, stack.identity, stack.sync_worker)
            answers = [await http.get(f"{p.url}/readyz") for p in services]
            # every dependency back (the gateway's /readyz is 200 without them: its body says)
            return all(r.status_code == 200 and all(r.json().values()) for r in answers)

    await _until(ready, timeout, "the stack ready again")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _delete_consumer(js: Any) -> None:
    try:
        await js.delete_consumer(STREAM, harness.AUDIT_DURABLE)
    except NotFoundError:
        pass
