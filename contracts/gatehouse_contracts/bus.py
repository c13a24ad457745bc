"""Bus plumbing every service uses the same way: the event stream, publishing events, identity RPC."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import msgspec
import nats.errors
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from . import rpc
from .errors import GatehouseError, Unavailable, from_code
from .events import Event, encode_event
from .subjects import EVENTS_ALL, STREAM, event_subject, rpc_subject

R = TypeVar("R", bound=msgspec.Struct)


def make_broker(url: str, **options: Any) -> NatsBroker:
    """A broker that reconnects forever and logs each message only at DEBUG."""
    return NatsBroker(
        url, max_reconnect_attempts=-1, reconnect_time_wait=1, log_level=logging.DEBUG, **options
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


async def call_identity(
    nc: NatsClient, request: msgspec.Struct, reply_type: type[R], *, timeout: float = 5.0
) -> R:
    """Request/reply with identity; its refusals come back as our ``GatehouseError`` subclasses."""
    subject = rpc_subject(type(request).__name__)
    try:
        msg = await nc.request(subject, rpc.encode(request), timeout=timeout)
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
