"""The sync-worker's composition root: ``build(settings)`` wires MongoDB, HTTP, the consumer, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import ConsumerConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import TargetCreated, TargetSyncRequested, TargetUpdated, decode_event
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.subjects import EVENTS_PREFIX, STREAM, SYNC_WORKER_DURABLE

from . import sync
from .settings import Settings
from .store import TargetStore

log = logging.getLogger("gatehouse.sync")


def build(settings: Settings) -> Starlette:
    mongo = connect(settings.mongodb_url)
    http = httpx.AsyncClient(follow_redirects=False)
    broker = bus.make_broker(settings.nats_url)
    deps = sync.Deps(
        store=TargetStore(mongo, settings.gatehouse_db),
        http=http,
        settings=settings,
        nats=lambda: broker.connection,
    )

    @broker.subscriber(
        f"{EVENTS_PREFIX}.target.*",
        stream=JStream(STREAM, declare=False),
        durable=SYNC_WORKER_DURABLE,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=ConsumerConfig(
            ack_wait=settings.sync_ack_wait_seconds, max_deliver=settings.sync_max_attempts + 5
        ),
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
        heartbeat = asyncio.create_task(_keep_alive(msg, settings.sync_ack_wait_seconds / 3))
        try:
            delay = await sync.handle(deps, event, attempt)
        except GatehouseError as exc:  # MongoDB or NATS down: try the same event again later
            log.warning("sync of target %s postponed: %s", event.target_id, exc.message)
            await msg.nack(delay=5.0)
            return
        finally:
            heartbeat.cancel()
        if delay is None:
            await msg.ack()
        else:
            await msg.nack(delay=delay)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await broker.connect()
        await bus.ensure_stream(
            broker.connection,
            max_age_seconds=settings.events_max_age_seconds,
            max_bytes=settings.events_max_bytes,
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


async def _keep_alive(msg: NatsMessage, every: float) -> None:
    """Tell JetStream the sync is still running, so only a dead worker's events are redelivered."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()
