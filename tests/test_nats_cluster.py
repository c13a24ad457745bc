"""The event bus as a 3-node NATS cluster: a node killed with -9 under traffic loses nothing.

Three clustered nats-servers on loopback (config/nats.conf, JetStream, ``GATEHOUSE_EVENTS`` with
3 replicas); the services get all three URLs (``NATS_URL`` as a list) and an audit service records
the stream. While targets are being created and tools called, the node that leads the event stream
is killed (-9): the services carry on through the other two, every target ends READY, every event
and every tool call is in the audit trail exactly once; the node then comes back and catches up.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import harness
import httpx
import nats
import pytest
from admin import Admin, target_body
from pymongo import AsyncMongoClient
from rawmcp import open_session, rpc

from gatehouse_contracts.subjects import STREAM

TARGETS = 6
CALLS = 60


class Cluster:
    def __init__(self, nodes: list[harness.Proc], stack: harness.Stack, audit_db: str) -> None:
        self.nodes = nodes
        self.stack = stack
        self.audit_db = audit_db

    def admin_servers(self, nodes: list[harness.Proc] | None = None) -> list[str]:
        return [harness.nats_admin_url(n.url or "") for n in nodes or self.nodes]

    async def local_last_seq(self, node: harness.Proc) -> int:
        """The last sequence of the event stream as this node's own replica holds it."""
        monitor = (node.health_url or "").removesuffix("/healthz")
        async with httpx.AsyncClient() as http:
            jsz = (await http.get(f"{monitor}/jsz", params={"accounts": "true", "streams": "true"})).json()
        for account in jsz.get("account_details", []):
            for stream in account.get("stream_detail", []):
                if stream["name"] == STREAM:
                    return int(stream["state"]["last_seq"])
        return -1


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, mongo_url: str, mongo_server: Any
) -> AsyncIterator[Cluster]:
    nodes = harness.start_nats_cluster(tmp_path_factory.mktemp("nats-cluster"))
    run_id = f"cluster_{uuid.uuid4().hex[:8]}"
    stack = harness.start_stack(
        ",".join(n.url or "" for n in nodes), mongo_url, run_id=run_id, EVENTS_REPLICAS="3"
    )
    audit_db = f"gatehouse_audit_{run_id}"
    audit = harness.start_audit(stack, audit_db, "audit-cluster")
    try:
        yield Cluster(nodes, stack, audit_db)
    finally:
        audit.stop()
        stack.stop()
        for node in nodes:
            node.stop()
        if isinstance(mongo_server, harness.External):
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
            for db in (audit_db, stack.gatehouse_db, stack.identity_db):
                await client.drop_database(db)
            await client.close()


async def test_a_nats_node_killed_under_traffic_loses_nothing(cluster: Cluster, sdk_server: Any) -> None:
    stack = cluster.stack
    nc = await nats.connect(servers=cluster.admin_servers())
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2, info.cluster
        leader = next(n for n in cluster.nodes if n.name == f"nats-{info.cluster.leader.removeprefix('n')}")
        survivors = [n for n in cluster.nodes if n is not leader]
        # the test's own client talks to the survivors only: the services are the ones under test,
        # and a connection cut by the kill would leave nats-py's socket for a later test to trip on
        await nc.close()
        nc = await nats.connect(servers=cluster.admin_servers(survivors))
        js = nc.jetstream()

        async with (
            Admin(stack.gateway_url, stack.admin_headers) as admin,
            httpx.AsyncClient(timeout=30) as http,
        ):
            gateway = await admin.create_gateway()
            gid, url = gateway["gatewayId"], gateway["gatewayUrl"]
            await admin.ready_target(gid, "first", sdk_server.url)
            session = await open_session(http, url)
            quarter_done = asyncio.Event()

            async def call_tools() -> None:
                for i in range(CALLS):
                    text = f"call {i}"
                    answer = await rpc(
                        http,
                        url,
                        session,
                        "tools/call",
                        {"name": "first___echo", "arguments": {"text": text}},
                    )
                    assert answer["result"]["content"][0]["text"] == text, answer
                    if i == CALLS // 4:
                        quarter_done.set()
                    await asyncio.sleep(0.05)

            async def create_targets() -> list[str]:
                made = []
                for i in range(TARGETS):
                    made.append(
                        (await admin.create_target(gid, target_body(f"t{i}", sdk_server.url)))["targetId"]
                    )
                    await asyncio.sleep(0.3)
                return made

            calling = asyncio.create_task(call_tools())
            creating = asyncio.create_task(create_targets())
            await quarter_done.wait()
            leader.kill(signal.SIGKILL)  # the stream's leader: JetStream must elect another
            killed_at = time.monotonic()
            made = await creating
            await calling

            # every target the admin API accepted ends READY, through the two remaining nodes
            for target_id in made:
                ready = await admin.wait_status(gid, target_id, timeout=60)
                assert ready["status"] == "READY", ready
            new_leader = (await js.stream_info(STREAM)).cluster
            assert new_leader is not None and new_leader.leader != info.cluster.leader

            # every event is in the audit trail exactly once: one tool.invoked per call, and each
            # target's created + synchronized
            events = mongo[cluster.audit_db]["events"]
            expect_calls = CALLS  # records are keyed by event id: a redelivery cannot count twice
            deadline = time.monotonic() + 60
            while True:
                invoked = await events.count_documents({"gatewayId": gid, "type": "tool.invoked"})
                synced = await events.count_documents(
                    {"gatewayId": gid, "type": "target.synchronized", "targetId": {"$in": made}}
                )
                if (invoked, synced) == (expect_calls, TARGETS) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert invoked == expect_calls, f"{invoked} tool.invoked records for {expect_calls} calls"
            assert synced == TARGETS
            created = await events.count_documents(
                {"gatewayId": gid, "type": "target.created", "targetId": {"$in": made}}
            )
            assert created == TARGETS

            # the services carry on: a new target after the failover, its tools served
            after = await admin.ready_target(gid, "after", sdk_server.url)
            assert after["status"] == "READY"

            # the killed node comes back and catches up with the stream
            leader.start()
            leader.wait_http()
            last = (await js.stream_info(STREAM)).state.last_seq
            deadline = time.monotonic() + 60
            while await cluster.local_last_seq(leader) < last:
                assert time.monotonic() < deadline, "the restarted node did not catch up"
                await asyncio.sleep(0.2)
            for node in survivors:
                assert await cluster.local_last_seq(node) >= last
            print(f"failover: {time.monotonic() - killed_at:.1f}s from the kill to the caught-up node")
    finally:
        await mongo.close()
        await nc.close()
