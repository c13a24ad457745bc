"""The audit consumer: fetch a batch from the durable consumer, store it with one write, then ack.

Each message is acknowledged only after its record is written (or found there already: storing is
idempotent on the event id), so a crash between the write and the acks costs a redelivery, never a
record. A batch the database does not take is redelivered with backoff, message by message.

It pulls with nats-py directly rather than through a FastStream subscriber: FastStream calls a
handler per message, and its batch mode waits for a full batch (or its timeout) before handing it
over, which would hold back the events of a quiet minute. ``fetch`` returns what the consumer has
at once, up to the batch size, or waits for the first message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from gatehouse_contracts import bus
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.subjects import EVENTS_ALL, STREAM

from .records import Doc, record
from .settings import Settings
from .store import AuditStore

log = logging.getLogger("gatehouse.audit")

# The durable consumer's name (config/nats.conf lets the audit user use only this one).
DURABLE = "audit"
FETCH_WAIT = 5.0  # seconds one pull request lingers on a quiet stream
RETRY_SECONDS = 2.0  # before subscribing again after NATS refused


def consumer_config(settings: Settings) -> api.ConsumerConfig:
    """What the durable consumer is created with (fixed from then on, see docs/audit.md)."""
    return api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.ALL,  # a new audit consumer starts at the stream's beginning
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=settings.audit_ack_wait_seconds,
        max_deliver=settings.audit_max_deliver,
    )


def retry_delay(attempt: int) -> float:
    """Seconds before delivery ``attempt + 1``: 1, 2, 4 ... capped at a minute."""
    return float(min(60, 2 ** (attempt - 1)))


class AuditConsumer:
    def __init__(self, store: AuditStore, settings: Settings) -> None:
        self._store = store
        self._batch_size = settings.audit_batch_size
        self._pause = settings.audit_batch_pause_seconds
        self._max_deliver = settings.audit_max_deliver
        self._config = consumer_config(settings)

    async def run(self, js: JetStreamContext) -> None:
        """Forever: fetch up to ``AUDIT_BATCH_SIZE`` messages, store them, acknowledge them."""
        sub = await self._subscribe(js)
        while True:
            try:
                await self._next_batch(sub)
            except Exception:  # the loop must not die quietly; what is not acked comes again
                log.exception("consuming audit events failed unexpectedly; going on")
                await asyncio.sleep(RETRY_SECONDS)

    async def _next_batch(self, sub: JetStreamContext.PullSubscription) -> None:
        try:
            msgs = await sub.fetch(self._batch_size, timeout=FETCH_WAIT)
        except TimeoutError:  # a quiet stream, or NATS away (nats-py raises its own or asyncio's)
            return
        except nats.errors.Error as exc:
            log.warning("fetching audit events failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)
            return
        if msgs:  # (none: a status answer, e.g. around a reconnect)
            await self.store_batch(msgs)
        if len(msgs) < self._batch_size:
            # What arrives meanwhile waits in the consumer and comes as the next batch: at a steady
            # trickle of events, one write per pause rather than one per event. (The fetch itself
            # returns as soon as there is anything, so a lone event is stored at once.)
            await asyncio.sleep(self._pause)

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        while True:
            try:
                return await js.pull_subscribe(
                    EVENTS_ALL,
                    durable=DURABLE,
                    stream=STREAM,
                    config=self._config,
                    inbox_prefix=bus.pull_inbox_prefix("audit"),
                )
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("cannot bind the %s consumer yet (%s); retrying", DURABLE, type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def store_batch(self, msgs: list[Msg]) -> None:
        """One write for the batch; ack what is stored, redeliver the rest later."""
        stored_at = datetime.now(UTC)
        docs = [_record(msg, stored_at) for msg in msgs]
        try:
            refused = await self._store.add_many(docs)
        except GatehouseError as exc:  # MongoDB down or refusing the write: all of them again later
            refused = dict.fromkeys(range(len(docs)), exc.message)
        for i, msg in enumerate(msgs):
            if i not in refused:
                await msg.ack()
        if refused:
            await self._postpone([(msgs[i], docs[i], why) for i, why in refused.items()])

    async def _postpone(self, failed: list[tuple[Msg, Doc, str]]) -> None:
        """Redeliver with backoff; after the last delivery keep a dead letter and stop redelivering.
        One log line for the lot (a database outage fails every batch)."""
        last = 0
        for msg, _, why in failed:
            attempt = msg.metadata.num_delivered
            if attempt >= self._max_deliver:
                await bus.keep_dead_letter(self._store.dead_letter, msg, attempt, why, log)
                await msg.term()
                continue
            last = max(last, attempt)
            await msg.nak(delay=retry_delay(attempt))
        if last:
            msg, doc, why = failed[0]
            log.warning(
                "%d event(s) not stored, to be delivered again after up to %gs (delivery %d; "
                "first: %s on %s): %s",
                len(failed),
                retry_delay(last),
                last,
                doc["_id"],
                msg.subject,
                why,
            )


def _record(msg: Msg, stored_at: datetime) -> Doc:
    meta = msg.metadata
    return record(
        msg.data,
        subject=msg.subject,
        stream_seq=meta.sequence.stream,
        published_at=meta.timestamp or stored_at,
        stored_at=stored_at,
    )
