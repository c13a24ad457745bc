"""The sync-worker's guarantees: redelivery changes nothing, a killed worker loses no sync, RPC works."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import harness
import msgspec
import nats
from admin import Admin, target_body
from nats.js.api import ConsumerConfig, DeliverPolicy

from gatehouse_contracts import rpc
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.events import TargetCreated, TargetSynchronized, decode_event
from gatehouse_contracts.subjects import STREAM, SYNC_WORKER_DURABLE


async def _events_for(js: Any, target_id: str) -> list[Any]:
    return (await _events_by_target(js)).get(target_id, [])


async def _events_by_target(js: Any) -> dict[str, list[Any]]:
    """Every stored target event, by target, oldest first (reads the whole stream once)."""
    total = (await js.stream_info(STREAM)).state.messages
    sub = await js.subscribe(
        "gatehouse.events.>", ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: dict[str, list[Any]] = {}
    seen = 0
    try:
        while seen < total:
            try:
                msg = await sub.next_msg(timeout=5)
            except nats.errors.TimeoutError:
                break
            seen += 1
            try:
                event = decode_event(msg.data)
            except msgspec.DecodeError:  # another test puts junk on the stream on purpose
                continue
            if target_id := getattr(event, "target_id", None):
                found.setdefault(target_id, []).append(event)
        return found
    finally:
        await sub.unsubscribe()


async def _drained(js: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(STREAM, SYNC_WORKER_DURABLE)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert time.monotonic() < deadline, f"sync-worker did not drain: {info}"
        await asyncio.sleep(0.1)


async def test_same_event_delivered_twice_changes_nothing(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        target = await admin.ready_target(gateway["gatewayId"], "twice", sdk_server.url)
        nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
        js = nc.jetstream()
        try:
            events = await _events_for(js, target["targetId"])
            created = next(e for e in events if isinstance(e, TargetCreated))
            # a second delivery of the very same event (a new Nats-Msg-Id gets it past de-duplication)
            await js.publish(
                "gatehouse.events.target.created",
                msgspec.json.encode(created),
                headers={"Nats-Msg-Id": created.event_id + "-again"},
            )
            await _drained(js)
            after = await _events_for(js, target["targetId"])
        finally:
            await nc.close()
        assert await admin.target(gateway["gatewayId"], target["targetId"]) == target
        assert [type(e).__name__ for e in after] == [type(e).__name__ for e in events] + ["TargetCreated"]


async def test_killed_sync_worker_loses_no_sync_of_50_targets(stack: Any, upstreams: Any) -> None:
    upstream = upstreams.sdk(extra_tools=100, page_size=10)  # 11 pages a sync: they take a while
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        created = [
            await admin.create_target(gateway["gatewayId"], target_body(f"t{i}", upstream.url))
            for i in range(50)
        ]
        stack.restart_sync_worker(kill9=True)  # in the middle of the syncs
        finals = [await admin.wait_status(gateway["gatewayId"], t["targetId"], timeout=180) for t in created]
    assert [t["status"] for t in finals] == ["READY"] * 50
    assert {t["toolCount"] for t in finals} == {105}
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    try:
        # An outcome stored by the killed worker but not yet published sits in the target's outbox
        # until the next delivery or the sweeper publishes it: give that a few rounds.
        for _ in range(20):
            events = await _events_by_target(nc.jetstream())
            if all(any(isinstance(e, TargetSynchronized) for e in events[t["targetId"]]) for t in created):
                break
            await asyncio.sleep(1)
        for target in created:  # no event lost, none doubled: one created, one synchronized each
            kinds = [type(e).__name__ for e in events[target["targetId"]]]
            assert kinds.count("TargetCreated") == 1 and kinds.count("TargetSynchronized") == 1, kinds
    finally:
        await nc.close()


async def test_workload_identity_over_nats_rpc(stack: Any) -> None:
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    identity = IdentityClient(lambda: nc, "admin")
    try:
        made = await identity.call(rpc.CreateWorkloadIdentity(name="rpc-made"), rpc.WorkloadIdentity)
        assert made.name == "rpc-made"
        got = await identity.call(rpc.GetWorkloadIdentity(name="rpc-made"), rpc.WorkloadIdentity)
        assert made.client_secret and got == msgspec.structs.replace(made, client_secret=None)  # shown once
        listed = await identity.call(rpc.ListWorkloadIdentities(max_results=1000), rpc.WorkloadIdentityList)
        assert "rpc-made" in [w.name for w in listed.items]
        await identity.call(rpc.DeleteWorkloadIdentity(name="rpc-made"), rpc.Deleted)
        try:
            await identity.call(rpc.GetWorkloadIdentity(name="rpc-made"), rpc.WorkloadIdentity)
            raise AssertionError("expected NotFound")
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "NotFound"
        bad = await nc.request("gatehouse.rpc.identity.GetWorkloadIdentity.admin", b"{nope", timeout=5)
        assert msgspec.json.decode(bad.data)["code"] == "ValidationException"
    finally:
        await nc.close()


async def test_the_sweeper_s_queries_have_indexes(stack: Any) -> None:
    """On MongoDB the sweep every few seconds must not scan every target (FerretDB scans anyway)."""
    from pymongo import AsyncMongoClient

    mongo: Any = AsyncMongoClient(stack.mongo_url)
    try:
        targets = mongo[stack.gatehouse_db]["targets"]
        deadline = time.monotonic() + 30
        while True:
            indexes = await targets.index_information()
            if {"status.status_1", "outboxId_1"} <= set(indexes) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert indexes["status.status_1"]["key"] == [("status.status", 1)]
        assert indexes["outboxId_1"]["key"] == [("outboxId", 1)]  # sparse on MongoDB; FerretDB drops that
    finally:
        await mongo.close()
