"""Bus plumbing every service uses the same way: the broker, the event stream, publishing events,
identity RPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import nats.errors
from faststream.nats import NatsBroker
from faststream.nats.security import NatsUserPassword
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from . import rpc, tracing
from .errors import GatehouseError, Unavailable, from_code
from .events import Event, encode_event
from .metrics import BUS_PUBLISHED, RPC_DURATION, bus_middleware
from .subjects import EVENTS_ALL, STREAM, STREAM_CREATED_ADVISORY, event_subject, rpc_subject

R = TypeVar("R", bound=msgspec.Struct)
E = TypeVar("E", bound=Event)


def inbox_prefix(service: str) -> str:
    """Where a service's replies (RPC answers, JetStream acks and pulls) come: ``_INBOX.<service>``.
    config/nats.conf lets each service's user subscribe to its own prefix only, so no service can
    read another's replies (users' tokens travel in identity's)."""
    return f"_INBOX.{service}"


def pull_inbox_prefix(service: str) -> bytes:
    """The same prefix for a FastStream JetStream pull subscriber, which does not take the
    connection's own (it defaults to ``_INBOX.``)."""
    return f"{inbox_prefix(service)}.".encode()


def make_broker(url: str, service: str, user: str = "", password: str = "", **options: Any) -> NatsBroker:
    """A broker that connects as the service's own NATS user (when one is configured), takes its
    replies on the service's own inbox prefix, reconnects forever and logs each message only at
    DEBUG. ``url`` may list several servers of a NATS cluster, comma-separated: the client connects to
    one of them and fails over to the others."""
    security = NatsUserPassword(username=user, password=password) if user else None
    return NatsBroker(
        [server.strip() for server in url.split(",") if server.strip()],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        log_level=logging.DEBUG,
        logger=logging.getLogger("gatehouse.bus"),  # through our handler (LOG_FORMAT), not FastStream's own
        security=security,
        inbox_prefix=inbox_prefix(service),
        middlewares=_middlewares(service),
        **options,
    )


def _middlewares(service: str) -> tuple[Any, ...]:
    """Prometheus always; OpenTelemetry when tracing is on: a span per message consumed or
    published through FastStream, parented by the ``traceparent`` header the message carries."""
    if not tracing.ENABLED:
        return (bus_middleware(service),)
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    return (bus_middleware(service), NatsTelemetryMiddleware())


class StreamLimits(msgspec.Struct, frozen=True):
    """The retention ``GATEHOUSE_EVENTS`` is created with."""

    max_age_seconds: float
    max_bytes: int
    replicas: int = 1  # 3 on a NATS cluster: the stream (and its consumers) survive a node's loss


def stream_config(limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=[EVENTS_ALL],
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        num_replicas=limits.replicas,
        duplicate_window=120.0,
    )


async def create_stream(nc: NatsClient, limits: StreamLimits, log: logging.Logger) -> None:
    """Create the event stream if it is missing (identity does, at start-up). An existing stream is
    left as it is: its NATS user may create the stream but not change it, so no service can
    truncate or re-point the audit trail; an operator (the NATS ``admin`` user) changes limits."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(stream_config(limits))
            log.info("created the event stream %s", STREAM)
            return
        except BadRequestError:  # created a moment ago by another replica
            info = await js.stream_info(STREAM)
    have = (info.config.max_age, info.config.max_bytes)
    if have != (limits.max_age_seconds, limits.max_bytes):
        log.warning(
            "the event stream %s keeps max_age=%gs max_bytes=%d, not EVENTS_MAX_AGE_SECONDS=%g "
            "EVENTS_MAX_BYTES=%d; only an operator (the NATS admin user) may change it, e.g. "
            "`nats stream edit %s --max-age=%gs --max-bytes=%d`",
            STREAM,
            *have,
            limits.max_age_seconds,
            limits.max_bytes,
            STREAM,
            limits.max_age_seconds,
            limits.max_bytes,
        )


async def wait_for_stream(nc: NatsClient, log: logging.Logger) -> None:
    """Return once the event stream exists; until then say why we wait. Woken by JetStream's
    stream-created advisory (re-checked every 30 s in case it was missed)."""
    created = asyncio.Event()

    async def on_created(_: Any) -> None:
        created.set()

    sub = await nc.subscribe(STREAM_CREATED_ADVISORY, cb=on_created)
    try:
        while True:
            created.clear()  # before looking, so an advisory sent meanwhile is not lost
            try:
                await nc.jetstream().stream_info(STREAM)
                return
            except NotFoundError:
                pass
            log.warning(
                "waiting for the event stream %s: identity creates it when it starts "
                "(or an operator, as the NATS admin user)",
                STREAM,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(created.wait(), 30)
    finally:
        await sub.unsubscribe()


async def publish_event(
    nc: NatsClient, event: Event, *, timeout: float = 5.0, deadline: float = 20.0
) -> None:
    """Store the event in the stream (``Nats-Msg-Id`` = event id, so a retried publish is dropped).

    While the client is connected, a refused or unanswered publish is retried until ``deadline``:
    on a NATS cluster that is the stream electing a new leader after a node died (seconds), and
    the caller should wait through it rather than fail. Without a connection it fails at once
    after the first attempt: NATS is down, say so."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    data, subject = encode_event(event), event_subject(event)
    headers = {"Nats-Msg-Id": event.event_id}
    if tracing.traced():  # the consumers' spans join the trace of what caused the event
        tracing.inject(headers)
    while True:
        try:
            await nc.jetstream().publish(subject, data, timeout=timeout, headers=headers)
            BUS_PUBLISHED.labels(subject).inc()
            return
        except (nats.errors.Error, TimeoutError) as exc:
            if not nc.is_connected or loop.time() + 0.5 >= give_up:
                raise Unavailable(f"the event bus is unavailable ({type(exc).__name__})") from None
            await asyncio.sleep(0.5)


async def publish_confirmed(js: JetStreamContext, events: Sequence[E], *, timeout: float = 5.0) -> list[E]:
    """Publish a batch of events at once (for high-rate events such as ``tool.invoked``) and wait up
    to ``timeout`` for the stream to confirm each; the events it did not confirm, in their order, for
    the caller to publish again (``Nats-Msg-Id`` = event id: a copy the stream already holds is
    dropped). Pipelined: one reply subscription, no round trip per event."""
    sent: list[tuple[E, asyncio.Future[Any] | None]] = []
    for event in events:
        try:
            ack = await js.publish_async(
                event_subject(event), encode_event(event), headers={"Nats-Msg-Id": event.event_id}
            )
        except nats.errors.Error:
            ack = None
        else:
            BUS_PUBLISHED.labels(event_subject(event)).inc()
        sent.append((event, ack))
    waiting = [ack for _, ack in sent if ack is not None]
    if waiting:
        _, late = await asyncio.wait(waiting, timeout=timeout)
        for ack in late:
            ack.cancel()
    return [event for event, ack in sent if ack is None or ack.cancelled() or ack.exception() is not None]


class IdentityClient:
    """Identity's RPC as one service calls it. The subject names the caller
    (``gatehouse.rpc.identity.<Operation>.<caller>``) and NATS permissions let only that service
    publish it, so identity knows who asks."""

    def __init__(self, nats: Callable[[], NatsClient], caller: str, timeout: float = 5.0) -> None:
        self._nats = nats  # resolved per call, so a reconnect is picked up
        self.caller = caller
        self.timeout = timeout

    async def call(self, request: msgspec.Struct, reply_type: type[R]) -> R:
        """Request/reply; identity's refusals come back as our ``GatehouseError`` subclasses."""
        operation = type(request).__name__
        subject = rpc_subject(operation, self.caller)
        if tracing.traced():
            with tracing.client_span(
                f"identity {operation}", **{"rpc.system": "nats", "rpc.method": operation}
            ):
                return await self._call(operation, subject, request, reply_type)
        return await self._call(operation, subject, request, reply_type)

    async def _call(self, operation: str, subject: str, request: msgspec.Struct, reply_type: type[R]) -> R:
        headers: dict[str, str] | None = None
        if tracing.traced():  # identity's FastStream subscriber continues the trace from this header
            headers = {}
            tracing.inject(headers)
        started = time.perf_counter()
        try:
            msg = await self._nats().request(
                subject, rpc.encode(request), timeout=self.timeout, headers=headers
            )
        except nats.errors.NoRespondersError:
            RPC_DURATION.labels(operation, "unavailable").observe(time.perf_counter() - started)
            raise Unavailable("the identity service is not running") from None
        except (nats.errors.Error, TimeoutError) as exc:
            RPC_DURATION.labels(operation, "unavailable").observe(time.perf_counter() - started)
            raise Unavailable(f"the identity service did not answer ({type(exc).__name__})") from None
        BUS_PUBLISHED.labels(subject).inc()
        try:
            answer = msgspec.json.decode(msg.data, type=reply_type | rpc.RpcError)
        except msgspec.DecodeError as exc:
            raise GatehouseError(f"identity sent an unreadable reply: {exc}") from None
        refused = isinstance(answer, rpc.RpcError)
        RPC_DURATION.labels(operation, "refused" if refused else "ok").observe(time.perf_counter() - started)
        if isinstance(answer, rpc.RpcError):
            raise from_code(answer.code, answer.message)
        return answer  # type: ignore[no-any-return]


async def start_broker(
    broker: NatsBroker,
    log: logging.Logger,
    *,
    create: StreamLimits | None = None,
    retry_seconds: float = 2.0,
) -> None:
    """Connect (waiting for NATS if it is not up yet), make sure the event stream exists (``create``
    it with these limits, or wait for it), start the subscribers. A service may start before NATS;
    after that, the client reconnects by itself."""
    while True:
        try:
            await broker.connect()
            if create is not None:
                await create_stream(broker.connection, create, log)
            else:
                await wait_for_stream(broker.connection, log)
            await broker.start()
            return
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            log.warning("NATS is not reachable yet (%s); retrying in %gs", type(exc).__name__, retry_seconds)
            await asyncio.sleep(retry_seconds)


async def keep_dead_letter(
    store: Callable[[dict[str, Any]], Awaitable[None]],
    msg: Msg,
    attempts: int,
    reason: str,
    log: logging.Logger,
) -> None:
    """Keep a JetStream message that failed every delivery where an operator can find it (``store``
    writes the record), and say so in the log; it also stays in the stream, to replay from there."""
    meta = msg.metadata
    record = {
        "_id": f"{meta.stream}:{meta.sequence.stream}",
        "subject": msg.subject,
        "data": msg.data.decode(errors="replace"),
        "reason": reason,
        "attempts": attempts,
        "at": time.time(),
    }
    log.error(
        "event %s on %s given up after %d deliveries: %s", record["_id"], record["subject"], attempts, reason
    )
    try:
        await store(record)
    except GatehouseError as exc:
        log.error("could not store the dead letter %s: %s", record["_id"], exc.message)
