"""Bus plumbing every service uses the same way: the broker, the event stream, publishing events,
identity RPC."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import nats.errors
from faststream.nats import NatsBroker
from faststream.nats.security import NatsUserPassword
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from . import rpc
from .errors import GatehouseError, Unavailable, from_code
from .events import Event, encode_event
from .subjects import EVENTS_ALL, STREAM, event_subject, rpc_subject

R = TypeVar("R", bound=msgspec.Struct)


def make_broker(url: str, user: str = "", password: str = "", **options: Any) -> NatsBroker:
    """A broker that connects as the service's own NATS user (when one is configured), reconnects
    forever and logs each message only at DEBUG."""
    security = NatsUserPassword(username=user, password=password) if user else None
    return NatsBroker(
        url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        log_level=logging.DEBUG,
        security=security,
        **options,
    )


async def ensure_stream(nc: NatsClient, *, max_age_seconds: float, max_bytes: int) -> None:
    """Create or update the event stream; every service calls it, so start order does not matter."""
    js = nc.jetstream()
    config = StreamConfig(
        name=STREAM,
        subjects=[EVENTS_ALL],
        max_age=max_age_seconds,
        max_bytes=max_bytes,
        duplicate_window=120.0,
    )
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # another service created it first
            pass
    await js.update_stream(config)


async def publish_event(nc: NatsClient, event: Event, *, timeout: float = 5.0) -> None:
    """Store the event in the stream (``Nats-Msg-Id`` = event id, so a retried publish is dropped)."""
    try:
        await nc.jetstream().publish(
            event_subject(event),
            encode_event(event),
            timeout=timeout,
            headers={"Nats-Msg-Id": event.event_id},
        )
    except (nats.errors.Error, TimeoutError) as exc:
        raise Unavailable(f"the event bus is unavailable ({type(exc).__name__})") from None


async def publish_event_nowait(nc: NatsClient, event: Event) -> None:
    """Hand the event to NATS without waiting for the stream's ack (for high-rate events such as
    ``tool.invoked``: the stream still stores it; ``Nats-Msg-Id`` still de-duplicates)."""
    try:
        await nc.publish(event_subject(event), encode_event(event), headers={"Nats-Msg-Id": event.event_id})
    except nats.errors.Error as exc:
        raise Unavailable(f"the event bus is unavailable ({type(exc).__name__})") from None


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
        subject = rpc_subject(type(request).__name__, self.caller)
        try:
            msg = await self._nats().request(subject, rpc.encode(request), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise Unavailable("the identity service is not running") from None
        except (nats.errors.Error, TimeoutError) as exc:
            raise Unavailable(f"the identity service did not answer ({type(exc).__name__})") from None
        try:
            answer = msgspec.json.decode(msg.data, type=reply_type | rpc.RpcError)
        except msgspec.DecodeError as exc:
            raise GatehouseError(f"identity sent an unreadable reply: {exc}") from None
        if isinstance(answer, rpc.RpcError):
            raise from_code(answer.code, answer.message)
        return answer  # type: ignore[no-any-return]


async def start_broker(
    broker: NatsBroker,
    log: logging.Logger,
    *,
    max_age_seconds: float,
    max_bytes: int,
    retry_seconds: float = 2.0,
) -> None:
    """Connect (waiting for NATS if it is not up yet), make sure the event stream exists, start the
    subscribers. A service may start before NATS; after that, the client reconnects by itself."""
    while True:
        try:
            await broker.connect()
            await ensure_stream(broker.connection, max_age_seconds=max_age_seconds, max_bytes=max_bytes)
            await broker.start()
            return
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            log.warning("NATS is not reachable yet (%s); retrying in %gs", type(exc).__name__, retry_seconds)
            await asyncio.sleep(retry_seconds)


async def keep_dead_letter(
    store: Callable[[dict[str, Any]], Awaitable[None]],
    msg: Any,
    attempts: int,
    reason: str,
    log: logging.Logger,
) -> None:
    """Keep a JetStream message that failed every delivery where an operator can find it (``store``
    writes the record), and say so in the log; it also stays in the stream, to replay from there."""
    meta = msg.raw_message.metadata
    record = {
        "_id": f"{meta.stream}:{meta.sequence.stream}",
        "subject": msg.raw_message.subject,
        "data": msg.body.decode(errors="replace"),
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
