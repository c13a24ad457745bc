"""The sync-worker's composition root: ``build(settings)`` wires MongoDB, HTTP, the consumer, health
into the ASGI app uvicorn serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
from fastapi import FastAPI
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import ConsumerConfig
from starlette.types import ASGIApp

from gatehouse_contracts import bus
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import (
    AnyEvent,
    TargetCreated,
    TargetSyncRequested,
    TargetUpdated,
    TokenIssued,
    decode_event,
)
from gatehouse_contracts.http import service_app
from gatehouse_contracts.mcp_client import McpHttp
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.netguard import EndpointGuard
from gatehouse_contracts.subjects import EVENTS_PREFIX, STREAM, SYNC_WORKER_DURABLE

from . import consent, metrics, sync
from .deps import Deps, flush_outbox
from .settings import Settings
from .store import TargetStore

log = logging.getLogger("gatehouse.sync")


Handler = Callable[[NatsMessage], Awaitable[None]]


def build(settings: Settings) -> ASGIApp:
    mongo = connect(settings.mongodb_url)
    guard = EndpointGuard.from_settings(settings)
    http = McpHttp(max_response_bytes=settings.sync_max_response_bytes, guard=guard)
    broker = bus.make_broker(settings.nats_url, "sync-worker", settings.nats_user, settings.nats_password)
    deps = Deps(
        store=TargetStore(mongo, settings.gatehouse_db),
        http=http,
        settings=settings,
        nats=lambda: broker.connection,
        identity=IdentityClient(lambda: broker.connection, "sync-worker", settings.sync_timeout_seconds),
    )

    max_deliver = settings.sync_max_attempts + 5

    def durable(subject: str, name: str) -> Callable[[Handler], Handler]:
        """A durable pull consumer shared by every replica: explicit ack, bounded redelivery."""
        return broker.subscriber(
            subject,
            stream=JStream(STREAM, declare=False),
            durable=name,
            pull_sub=PullSub(batch_size=1, timeout=5.0),
            inbox_prefix=bus.pull_inbox_prefix("sync-worker"),
            config=ConsumerConfig(ack_wait=settings.sync_ack_wait_seconds, max_deliver=max_deliver),
            ack_policy=AckPolicy.MANUAL,
            max_workers=settings.sync_concurrency,
            title=name,
        )

    async def run(msg: NatsMessage, kind: str, work: Callable[[int], Awaitable[float | None]]) -> None:
        """Run ``work(attempt)`` with heartbeats; ack when done, redeliver after its delay or an outage."""
        heartbeat = asyncio.create_task(_keep_alive(msg, settings.sync_ack_wait_seconds / 3))
        attempt = msg.raw_message.metadata.num_delivered
        if attempt > 1:
            metrics.REDELIVERIES.labels(kind).inc()
        started = time.perf_counter()
        try:
            delay = await work(attempt)
        except GatehouseError as exc:  # MongoDB, NATS or identity down: the same event again later
            if attempt >= max_deliver:
                metrics.SYNCS.labels(kind, "dead_letter").observe(time.perf_counter() - started)
                metrics.DEAD_LETTERS.labels(kind).inc()
                await bus.keep_dead_letter(deps.store.dead_letter, msg.raw_message, attempt, exc.message, log)
                await msg.reject()
                return
            metrics.SYNCS.labels(kind, "postponed").observe(time.perf_counter() - started)
            log.warning(
                "event on %s postponed (attempt %d): %s", msg.raw_message.subject, attempt, exc.message
            )
            await msg.nack(delay=5.0)
            return
        finally:
            heartbeat.cancel()
        outcome = "done" if delay is None else "retry"
        metrics.SYNCS.labels(kind, outcome).observe(time.perf_counter() - started)
        await (msg.ack() if delay is None else msg.nack(delay=delay))

    @durable(f"{EVENTS_PREFIX}.target.*", SYNC_WORKER_DURABLE)
    async def on_target_event(msg: NatsMessage) -> None:
        """Synchronize a target's tools when it is created, updated or asked to synchronize."""
        event = await _decode(msg)
        if not isinstance(event, (TargetCreated, TargetUpdated, TargetSyncRequested)):
            await msg.ack()
            return
        await run(msg, "target", lambda attempt: sync.handle(deps, event, attempt))

    @durable(f"{EVENTS_PREFIX}.identity.token_issued", f"{SYNC_WORKER_DURABLE}-consent")
    async def on_token_issued(msg: NatsMessage) -> None:
        """Resume an implicit sync once the admin has consented."""
        event = await _decode(msg)
        if not isinstance(event, TokenIssued):
            await msg.ack()
            return
        await run(msg, "consent", lambda attempt: sync.handle_consent(deps, event, attempt))

    indexed = False

    async def sweep_once() -> None:
        nonlocal indexed
        if not indexed:  # here, not at start-up: the worker starts (and consumes) without MongoDB
            await deps.store.create_indexes()
            indexed = True
        await consent.expire(deps)
        for doc in await deps.store.with_outbox():
            await flush_outbox(deps, doc)

    async def sweep_forever() -> None:
        """Fail consents never given; publish outcome events a killed worker left in an outbox.
        Each round runs as its own task and is abandoned after a time limit, so one stuck database
        call cannot stop the sweeping."""
        log.info("sweeping expired consents and outboxes every %gs", settings.sync_pending_sweep_seconds)
        limit = max(30.0, 4 * settings.sync_pending_sweep_seconds)
        while True:
            await asyncio.sleep(settings.sync_pending_sweep_seconds)
            round_task = asyncio.create_task(sweep_once())
            done, _ = await asyncio.wait({round_task}, timeout=limit)
            if not done:
                round_task.cancel()
                log.warning("a sweep took over %gs; abandoned (retrying next round)", limit)
                continue
            if round_task.cancelled():  # by a library, not by us: .exception() would raise and end the loop
                log.warning("a sweep was cancelled from inside (retrying next round)")
                continue
            exc = round_task.exception()
            if isinstance(exc, GatehouseError):
                log.warning("sweeping failed (retrying next round): %s", exc.message)
            elif exc is not None:  # a background loop must not die quietly
                log.error("sweeping failed unexpectedly (retrying next round)", exc_info=exc)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bus.start_broker(broker, log)
        sweeper = asyncio.create_task(sweep_forever())
        sweeper.add_done_callback(_sweeper_ended)
        log.info("sync-worker consuming %s as %s", STREAM, SYNC_WORKER_DURABLE)
        yield
        sweeper.remove_done_callback(_sweeper_ended)
        sweeper.cancel()
        await broker.stop()
        await http.close()
        await guard.close()
        await mongo.close()

    return service_app(
        "Gatehouse sync-worker", lifespan, broker, mongo, scrapes=[metrics.pending_consents(deps.store)]
    )


def _sweeper_ended(task: asyncio.Task[None]) -> None:
    """The sweeper only ends at shutdown (this callback is removed first): say so loudly otherwise."""
    why = "cancelled" if task.cancelled() else repr(task.exception())
    log.error("the sweeper stopped (%s): expired consents and outboxes wait for a restart", why)


async def _decode(msg: NatsMessage) -> AnyEvent | None:
    try:
        return decode_event(msg.body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        log.warning("dropping an undecodable event on %s", msg.raw_message.subject)
        await msg.reject()
        return None


async def _keep_alive(msg: NatsMessage, every: float) -> None:
    """Tell JetStream the sync is still running, so only a dead worker's events are redelivered."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()
