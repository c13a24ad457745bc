"""The audit subscriber's composition root: ``build(settings)`` wires MongoDB, the consumer, health
into the ASGI app uvicorn serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import api
from starlette.types import ASGIApp

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.http import AdminAuth, service_app
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.subjects import EVENTS_ALL, STREAM

from .http_query import add_query_route
from .records import record
from .settings import Settings
from .store import AuditStore

log = logging.getLogger("gatehouse.audit")

# The durable consumer's name (config/nats.conf lets the audit user use only this one).
DURABLE = "audit"
BATCH_SIZE = 32  # one fetch's worth; inserts are idempotent, so the order inside a batch is free


def build(settings: Settings) -> ASGIApp:
    mongo = connect(settings.mongodb_url)
    store = AuditStore(mongo, settings.audit_db)
    broker = bus.make_broker(settings.nats_url, "audit", settings.nats_user, settings.nats_password)

    @broker.subscriber(
        EVENTS_ALL,
        stream=JStream(STREAM, declare=False),
        durable=DURABLE,
        pull_sub=PullSub(batch_size=BATCH_SIZE, timeout=5.0),
        inbox_prefix=bus.pull_inbox_prefix("audit"),
        config=api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL,  # a new audit consumer starts at the stream's beginning
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=settings.audit_ack_wait_seconds,
            max_deliver=settings.audit_max_deliver,
        ),
        ack_policy=AckPolicy.MANUAL,
        title=DURABLE,
    )
    async def on_event(msg: NatsMessage) -> None:
        """Store every event of the stream once (keyed by its event id), undecodable ones included."""
        raw = msg.raw_message
        meta = raw.metadata
        doc = record(
            msg.body,
            subject=raw.subject,
            stream_seq=meta.sequence.stream,
            published_at=meta.timestamp or datetime.now(UTC),
            stored_at=datetime.now(UTC),
        )
        try:
            await store.add(doc)
        except GatehouseError as exc:  # MongoDB down or refusing: the same message again later
            attempt = meta.num_delivered
            if attempt >= settings.audit_max_deliver:
                await bus.keep_dead_letter(store.dead_letter, msg, attempt, exc.message, log)
                await msg.reject()
                return
            log.warning("event %s postponed (delivery %d): %s", doc["_id"], attempt, exc.message)
            await msg.nack(delay=retry_delay(attempt))
            return
        await msg.ack()

    async def indexes_when_possible() -> None:
        """Create the indexes as soon as MongoDB answers (the consumer does not wait for them)."""
        while True:
            try:
                await store.ensure_indexes()
                return
            except GatehouseError as exc:
                log.warning("creating the audit indexes failed, retrying: %s", exc.message)
                await asyncio.sleep(5)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        indexing = asyncio.create_task(indexes_when_possible())
        await bus.start_broker(broker, log)
        log.info("audit consuming %s as %s into %s.events", STREAM, DURABLE, settings.audit_db)
        yield
        indexing.cancel()
        await broker.stop()
        await mongo.close()

    app = service_app("Gatehouse audit", lifespan, broker, mongo)
    add_query_route(app, store, AdminAuth(settings.gatehouse_admin_token))
    return app


def retry_delay(attempt: int) -> float:
    """Seconds before delivery ``attempt + 1``: 1, 2, 4 ... capped at a minute."""
    return float(min(60, 2 ** (attempt - 1)))
