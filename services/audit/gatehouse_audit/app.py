"""The audit subscriber's composition root: ``build(settings)`` wires MongoDB, the consumer, health
into the ASGI app uvicorn serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.http import AdminAuth, service_app
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.subjects import STREAM

from .consumer import DURABLE, AuditConsumer
from .http_query import add_query_route
from .settings import Settings
from .store import AuditStore

log = logging.getLogger("gatehouse.audit")


def build(settings: Settings) -> ASGIApp:
    mongo = connect(settings.mongodb_url)
    store = AuditStore(mongo, settings.audit_db)
    broker = bus.make_broker(settings.nats_url, "audit", settings.nats_user, settings.nats_password)
    consumer = AuditConsumer(store, settings)

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
        consuming = asyncio.create_task(consumer.run(broker.connection.jetstream()))
        log.info(
            "audit consuming %s as %s into %s.events, up to %d a batch",
            STREAM,
            DURABLE,
            settings.audit_db,
            settings.audit_batch_size,
        )
        yield
        for task in (consuming, indexing):
            task.cancel()  # a batch cut short is redelivered, and storing it again changes nothing
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await broker.stop()
        await mongo.close()

    app = service_app("Gatehouse audit", lifespan, broker, mongo)
    add_query_route(app, store, AdminAuth(settings.gatehouse_admin_token))
    return app
