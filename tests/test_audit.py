"""The audit subscriber against real processes: every event of an end-to-end run lands in MongoDB
once, in order, also when the subscriber starts after the events; `gatehouse-audit tail` shows them.

The audit service runs as its own process with the audit NATS user of config/nats.conf (started
here with harness.Proc, like harness.start_service starts the other three).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import harness
import httpx
import nats
import pytest
from admin import Admin
from harness import audit_tail as tail
from pymongo import AsyncMongoClient
from rawmcp import open_session, rpc

from gatehouse_contracts.events import ToolInvoked, decode_event, encode_event
from gatehouse_contracts.subjects import STREAM, event_subject

FLOW = ["gateway.created", "target.created", "target.synchronized", "tool.invoked"]


class Run:
    """One end-to-end run (gateway, target, tool call) recorded by an audit service."""

    def __init__(self, stack: Any, nc: Any, mongo: AsyncMongoClient[dict[str, Any]]) -> None:
        self.stack = stack
        self.nc = nc
        self.js = nc.jetstream()
        self.mongo = mongo
        self.db = f"gatehouse_audit_test_{uuid.uuid4().hex[:8]}"
        self.dbs = [self.db]
        self.procs: list[harness.Proc] = []
        self.gateway: dict[str, Any] = {}
        self.target: dict[str, Any] = {}

    def events(self, db: str | None = None) -> Any:
        return self.mongo[db or self.db]["events"]

    async def of_gateway(self, db: str | None = None) -> list[dict[str, Any]]:
        query = {"gatewayId": self.gateway["gatewayId"]}
        return await self.events(db).find(query).sort([("occurredAt", 1), ("_id", 1)]).to_list()

    async def caught_up(self, timeout: float = 30) -> None:
        await harness.audit_caught_up(self.js, timeout)

    def start(self, db: str, label: str) -> harness.Proc:
        proc = harness.start_audit(self.stack, db, label)
        self.procs.append(proc)
        return proc

    async def restart_from_scratch(self, db: str, label: str) -> harness.Proc:
        """Stop the audit service, drop its durable consumer, start a new one: it begins at the
        stream's first event (what a first deployment after weeks of traffic does)."""
        for proc in self.procs:
            proc.stop()
        await self.js.delete_consumer(STREAM, harness.AUDIT_DURABLE)
        if db not in self.dbs:
            self.dbs.append(db)
        proc = self.start(db, label)
        await self.caught_up()
        return proc

    async def call_tool(self, text: str) -> dict[str, Any]:
        """Call a tool, and return once its tool.invoked event is on the bus (the gateway publishes
        it off the request path, a moment after the answer)."""
        url = self.gateway["gatewayUrl"]
        invoked = await self.nc.subscribe("gatehouse.events.tool.invoked")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                session = await open_session(http, url)
                answer = await rpc(
                    http, url, session, "tools/call", {"name": "audited___echo", "arguments": {"text": text}}
                )
            assert answer["result"]["content"][0]["text"] == text, answer
            while (
                decode_event((await invoked.next_msg(timeout=30)).data).gateway_id
                != self.gateway["gatewayId"]
            ):  # type: ignore[attr-defined]
                pass
        finally:
            await invoked.unsubscribe()
        return answer


@pytest.fixture(scope="module")
async def run(stack: Any, sdk_server: Any, mongo_server: Any) -> AsyncIterator[Run]:
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    audit = Run(stack, nc, mongo)
    try:
        audit.start(audit.db, "audit")
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            audit.gateway = await admin.create_gateway()
            audit.target = await admin.ready_target(audit.gateway["gatewayId"], "audited", sdk_server.url)
        await audit.call_tool("audit me")
        await audit.caught_up()
        yield audit
    finally:
        for proc in audit.procs:
            proc.stop()
        if isinstance(mongo_server, harness.External):  # don't litter somebody else's MongoDB
            for db in audit.dbs:
                await mongo.drop_database(db)
        await mongo.close()
        await nc.close()


async def test_every_event_of_a_run_is_stored_in_order(run: Run) -> None:
    docs = await run.of_gateway()
    assert [d["type"] for d in docs] == FLOW
    gateway_id, target_id = run.gateway["gatewayId"], run.target["targetId"]
    created, target_created, synchronized, invoked = docs
    for doc in docs:
        event = decode_event(doc["raw"].encode())  # the JSON as it travelled
        assert doc["_id"] == doc["eventId"] == event.event_id
        assert isinstance(doc["occurredAt"], datetime)
        assert doc["audit"]["subject"] == event_subject(event)
        assert doc["gatewayId"] == gateway_id
    assert created["source"] == "gateway" and created["name"] == run.gateway["name"]
    assert target_created["targetId"] == synchronized["targetId"] == invoked["targetId"] == target_id
    assert synchronized["source"] == "sync-worker"
    assert synchronized["correlationId"] == target_created["eventId"]
    assert synchronized["toolCount"] == run.target["toolCount"]
    assert invoked["tool"] == "echo" and invoked["outcome"] == "success"
    assert invoked["durationMs"] > 0


async def test_indexes_for_time_gateway_and_type_queries(run: Run) -> None:
    info = await run.events().index_information()
    keys = {tuple(k for k, _ in index["key"]) for index in info.values()}
    assert {("occurredAt",), ("gatewayId", "occurredAt"), ("type", "occurredAt")} <= keys


async def test_a_duplicated_event_is_stored_once_and_junk_is_kept(run: Run) -> None:
    invoked = next(d for d in await run.of_gateway() if d["type"] == "tool.invoked")
    # the same event published again under another Nats-Msg-Id, so the stream really holds it twice
    event = decode_event(invoked["raw"].encode())
    assert isinstance(event, ToolInvoked)
    await run.js.publish(event_subject(event), encode_event(event), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    junk_subject = f"gatehouse.events.audit_test.junk_{uuid.uuid4().hex[:6]}"
    await run.js.publish(junk_subject, b"{not json at all")
    await run.caught_up()

    assert await run.events().count_documents({"_id": event.event_id}) == 1
    assert await run.events().find_one({"_id": event.event_id}) == invoked  # not even storedAt moved
    junk = await run.events().find_one({"audit.subject": junk_subject})
    assert junk is not None
    assert junk["type"] == "undecodable" and junk["raw"] == "{not json at all" and junk["error"]
    assert isinstance(junk["occurredAt"], datetime)


async def test_redelivery_of_the_whole_stream_changes_nothing(run: Run) -> None:
    before = await run.of_gateway()
    total = await run.events().count_documents({})
    await run.restart_from_scratch(run.db, "audit-replay")  # every event again, into the same database
    assert await run.of_gateway() == before
    assert await run.events().count_documents({}) == total


async def test_an_audit_service_started_after_the_events_gets_all_of_them(run: Run) -> None:
    first = await run.of_gateway()
    late_db = f"{run.db}_late"
    await run.restart_from_scratch(late_db, "audit-late")
    late = await run.of_gateway(late_db)
    assert [d["_id"] for d in late] == [d["_id"] for d in first]
    assert [d["type"] for d in late] == FLOW
    assert [d["raw"] for d in late] == [d["raw"] for d in first]


LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) +(.*)$")


def test_tail_filters_by_gateway_and_type_glob(run: Run) -> None:
    gateway_id, target_id = run.gateway["gatewayId"], run.target["targetId"]
    lines = tail(run.stack, run.db, "--gateway", gateway_id, "--type", "target.*")
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(1), m.group(2)) for m in parsed if m] == [
        ("target.created", f"gateway={gateway_id} target={target_id} generation=1"),
        (
            "target.synchronized",
            f"gateway={gateway_id} target={target_id} generation=1 tools={run.target['toolCount']}",
        ),
    ]

    everything = tail(run.stack, run.db, "--gateway", gateway_id)
    assert [LINE.match(line).group(1) for line in everything] == FLOW  # type: ignore[union-attr]
    assert re.search(r" tool=echo outcome=success duration=\d+\.\dms$", everything[-1]), everything[-1]

    assert tail(run.stack, run.db, "--gateway", gateway_id, "--limit", "2") == everything[-2:]
    assert tail(run.stack, run.db, "--target", target_id, "--type", "tool.invoked") == everything[-1:]
    assert tail(run.stack, run.db, "--gateway", gateway_id, "--since", "1h") == everything
    assert tail(run.stack, run.db, "--gateway", gateway_id, "--since", "2999-01-01T00:00:00Z") == []


def test_tail_json_prints_the_events_as_they_travelled(run: Run) -> None:
    lines = tail(run.stack, run.db, "--gateway", run.gateway["gatewayId"], "--json")
    events = [decode_event(line.encode()) for line in lines]
    assert [type(e).__name__ for e in events] == [
        "GatewayCreated",
        "TargetCreated",
        "TargetSynchronized",
        "ToolInvoked",
    ]
    assert all(json.loads(line)["type"] in FLOW for line in lines)


def test_tail_refuses_a_bad_since(run: Run) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gatehouse_audit", "tail", "--since", "last tuesday"],
        env=harness.audit_tail_env(run.stack, run.db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "--since" in done.stderr and not done.stdout


async def test_tail_follow_prints_new_events_as_they_are_stored(run: Run) -> None:
    # the audit service of the previous tests writes into the "late" database now
    db = run.dbs[-1]
    gateway_id = run.gateway["gatewayId"]
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gatehouse_audit",
        "tail",
        "--gateway",
        gateway_id,
        "--type",
        "tool.invoked",
        "--follow",
        "--interval",
        "0.2",
        env=harness.audit_tail_env(run.stack, db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None
    try:
        first = (await asyncio.wait_for(tail.stdout.readline(), 30)).decode()
        assert " tool.invoked " in first and "outcome=success" in first
        await run.call_tool("followed")
        second = (await asyncio.wait_for(tail.stdout.readline(), 30)).decode()
        assert " tool.invoked " in second and f"gateway={gateway_id}" in second
        assert second != first
        # and nothing else: the earlier events are not printed again
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(tail.stdout.readline(), 1.5)
    finally:
        tail.terminate()
        await tail.wait()
