"""What the bus tells this replica: catalog changes, revoked user tokens, sessions ended elsewhere,
calls cancelled through another replica, consents settled (a token issued or a consent refused).

Every subscription is ``no_reply``: an event published to JetStream carries the publisher's ack
inbox as its reply subject, and an (empty) answer from us would race JetStream's ack and break the
publish. A message that does not decode is dropped: nothing here can act on it.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage

from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import AuthorizationFailed, Event, TokenIssued, TokenRevoked, decode_event
from gatehouse_contracts.subjects import (
    CATALOG_SUBJECTS,
    EVENTS_PREFIX,
    MCP_REQUEST_CANCELLED,
    MCP_SESSION_ENDED,
)

from .changes import Replica, apply_event
from .in_flight import CancelledRequest
from .sessions import SessionClaims

log = logging.getLogger("gatehouse.gateway")
UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
T = TypeVar("T")


def subscribers(replica: Replica) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(CATALOG_SUBJECTS[1], title="catalog: targets", no_reply=True)
    @router.subscriber(CATALOG_SUBJECTS[0], title="catalog: gateways", no_reply=True)
    async def on_catalog_event(msg: NatsMessage) -> None:
        """Refresh this replica's catalog."""
        if (event := _event(msg.body)) is None:
            return
        try:
            await apply_event(replica, event)
        except GatehouseError as exc:
            log.warning("catalog refresh failed (%s); the periodic reload will retry", exc.message)

    @router.subscriber(f"{EVENTS_PREFIX}.identity.token_revoked", title="token revoked", no_reply=True)
    async def on_token_revoked(msg: NatsMessage) -> None:
        """Forget what this replica kept of a user's tokens once identity dropped one."""
        event = _event(msg.body)
        if isinstance(event, TokenRevoked) and event.user_id.startswith("jwt:"):
            replica.user_tokens.forget_user(event.workload_name, event.user_id.removeprefix("jwt:"))

    @router.subscriber(
        f"{EVENTS_PREFIX}.identity.authorization_failed", title="consent failed", no_reply=True
    )
    @router.subscriber(f"{EVENTS_PREFIX}.identity.token_issued", title="token issued", no_reply=True)
    async def on_consent_settled(msg: NatsMessage) -> None:
        """Wake the 2026-07-28 calls waiting for this consent session (waiters.py)."""
        event = _event(msg.body)
        if isinstance(event, (TokenIssued, AuthorizationFailed)) and event.session_uri:
            replica.consents.wake(event.session_uri)

    @router.subscriber(MCP_SESSION_ENDED, title="MCP session ended", no_reply=True)
    async def on_session_ended(msg: NatsMessage) -> None:
        """Forget a session another replica ended."""
        if (claims := _decoded(msg.body, SessionClaims)) is not None:
            replica.ended.end(claims)

    @router.subscriber(MCP_REQUEST_CANCELLED, title="MCP request cancelled", no_reply=True)
    async def on_request_cancelled(msg: NatsMessage) -> None:
        """Cancel a call running here that its client cancelled through another replica."""
        if (cancelled := _decoded(msg.body, CancelledRequest)) is not None:
            replica.in_flight.cancel(cancelled.nonce, cancelled.request_id)

    return router


def _event(body: bytes) -> Event | None:
    try:
        return decode_event(body)
    except UNDECODABLE:
        return None


def _decoded(body: bytes, kind: type[T]) -> T | None:
    try:
        return msgspec.json.decode(body, type=kind)
    except UNDECODABLE:
        return None
