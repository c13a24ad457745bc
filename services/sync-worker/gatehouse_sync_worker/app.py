"""The sync-worker's composition root: ``build(settings)`` wires MongoDB, HTTP, the durable consumer, health."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import ConsumerConfig
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import TargetCreated, TargetSyncRequested, TargetUpdated, decode_event
from gatehouse_contracts.subjects import EVENTS_PREFIX, STREAM, SYNC_WORKER_DURABLE

from . import sync
from .settings import Settings
from .store import TargetStore

log = logging.getLogger("gatehouse.sync")


def build(settings: Settings) -> Starlette:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, serverSelectionTimeoutMS=3000)
    http = httpx.AsyncClient(follow_redirects=False)
    broker = NatsBroker(settings.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=1)
    deps = sync.Deps(store=TargetStore(mongo, settings.gatehouse_db), http=http, settings=settings,
                     nats=lambda: broker.connection)
    ack_wait = 2 * settings.sync_timeout_seconds + 10

    @broker.subscriber(
        f"{EVENTS_PREFIX}.target.*",
        stream=JStream(STREAM, declare=False),
        durable=SYNC_WORKER_DURABLE,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=ConsumerConfig(ack_wait=ack_wait, max_deliver=settings.sync_max_attempts + 5),
        ack_policy=AckPolicy.MANUAL,
        max_workers=settings.sync_concurrency,
        title="sync-worker",
    )
    async def on_target_event(msg: NatsMessage) -> None:
        """Synchronize a target's tools when it is created, updated or asked to synchronize."""
        try:
            event = decode_event(msg.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("dropping an undecodable event on %s", msg.raw_message.subject)
            await msg.reject()
            return
        if not isinstance(event, (TargetCreated, TargetUpdated, TargetSyncRequested)):
            await msg.ack()
            return
        attempt = msg.raw_message.metadata.num_delivered
        try:
            delay = await sync.handle(deps, event, attempt)
        except GatehouseError as exc:  # MongoDB or NATS down: try the same event again later
            log.warning("sync of target %s postponed: %s", event.target_id, exc.message)
            await msg.nack(delay=5.0)
            return
        if delay is None:
            await msg.ack()
        else:
            await msg.nack(delay=delay)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await broker.connect()
        await bus.ensure_stream(
            broker.connection, max_age_seconds=settings.events_max_age_seconds, max_bytes=settings.events_max_bytes
        )
        await broker.start()
        log.info("sync-worker consuming %s as %s", STREAM, SYNC_WORKER_DURABLE)
        yield
        await broker.stop()
        await http.aclose()
        await mongo.close()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        nats_ok = broker.connection is not None and broker.connection.is_connected
        mongo_ok = await deps.store.ping()
        return JSONResponse({"nats": nats_ok, "mongodb": mongo_ok}, 200 if nats_ok and mongo_ok else 503)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)], lifespan=lifespan)
