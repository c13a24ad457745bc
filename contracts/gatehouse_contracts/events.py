"""Every event on the bus: frozen msgspec Structs in one tagged union with one decoder.

The tag (JSON field ``type``) is the subject suffix, so ``TargetCreated`` travels as
``gatehouse.events.target.created`` with ``{"type": "target.created", ...}``. Events never carry
secrets or tokens. Evolve a shape by adding fields with defaults only.
"""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", rename="camel"):
    """Fields every event has; ``event_id`` is also sent as ``Nats-Msg-Id`` for de-duplication."""

    event_id: str
    occurred_at: datetime
    source: str
    correlation_id: str = ""


# --- gateways -----------------------------------------------------------------------------


class GatewayCreated(Event, frozen=True, tag="gateway.created"):
    gateway_id: str
    name: str


class GatewayUpdated(Event, frozen=True, tag="gateway.updated"):
    gateway_id: str
    name: str


class GatewayDeleted(Event, frozen=True, tag="gateway.deleted"):
    gateway_id: str


# --- targets ------------------------------------------------------------------------------


class TargetCreated(Event, frozen=True, tag="target.created"):
    gateway_id: str
    target_id: str
    generation: int


class TargetUpdated(Event, frozen=True, tag="target.updated"):
    gateway_id: str
    target_id: str
    generation: int


class TargetDeleted(Event, frozen=True, tag="target.deleted"):
    gateway_id: str
    target_id: str


class TargetSyncRequested(Event, frozen=True, tag="target.sync_requested"):
    gateway_id: str
    target_id: str
    generation: int
    request_id: str


class TargetAuthorizationRequired(Event, frozen=True, tag="target.authorization_required"):
    """A sync waits for an admin's consent; the authorization URL stays in the target status."""

    gateway_id: str
    target_id: str
    generation: int
    user_id: str


class TargetSynchronized(Event, frozen=True, tag="target.synchronized"):
    gateway_id: str
    target_id: str
    generation: int
    tool_count: int


class TargetSyncFailed(Event, frozen=True, tag="target.sync_failed"):
    gateway_id: str
    target_id: str
    generation: int
    reason: str
    attempt: int
    terminal: bool


# --- identity -----------------------------------------------------------------------------

AuthorizationFailure = Literal[
    "user_mismatch",  # someone other than the user who started the session tried to complete it
    "expired",  # the session's 10 minutes are over
    "replayed",  # a state, code or session used a second time
    "provider_error",  # the provider answered the authorization or the code exchange with an error
    "unknown_session",  # no such session or state (tampered)
    "invalid_user_token",  # the user JWT offered for completion does not validate
    "not_permitted",  # a userId completion without admin or service credentials
    "incomplete",  # completion before the callback (older events only: handles exist after it)
    "browser_mismatch",  # the callback came to a browser that did not start the flow (no binding cookie)
    "login_failed",  # identity's own login of the consenting person failed (refused, invalid ID token)
]


class TokenIssued(Event, frozen=True, tag="identity.token_issued"):
    workload_name: str
    user_id: str
    provider_name: str
    scopes: list[str]
    session_uri: str = ""


class TokenRefreshed(Event, frozen=True, tag="identity.token_refreshed"):
    workload_name: str
    user_id: str
    provider_name: str
    scopes: list[str]


class TokenRevoked(Event, frozen=True, tag="identity.token_revoked"):
    workload_name: str
    user_id: str
    provider_name: str
    scopes: list[str]
    reason: str
    revoked_at_provider: bool = False
    """The provider confirmed an RFC 7009 revocation (a user's disconnect); else only dropped here."""


class ConnectionsListed(Event, frozen=True, tag="identity.connections_listed"):
    """A user looked at their own connections (``ListUserConnections``): who, where, how many."""

    workload_name: str
    user_id: str
    count: int


class AuthorizationFailed(Event, frozen=True, tag="identity.authorization_failed"):
    reason: AuthorizationFailure
    workload_name: str = ""
    user_id: str = ""
    provider_name: str = ""
    session_uri: str = ""
    count: int = 1
    """How many refusals this event stands for: more than 1 for a summary of refusals that named
    no session, counted over an interval instead of published one by one (identity's
    ``IDENTITY_MISS_EVENTS_INTERVAL_SECONDS``)."""


# --- tools --------------------------------------------------------------------------------

ToolOutcome = Literal["success", "tool_error", "upstream_error", "authorization_required", "unreachable"]


class ToolInvoked(Event, frozen=True, tag="tool.invoked"):
    gateway_id: str
    target_id: str
    tool: str
    user: str
    outcome: ToolOutcome
    duration_ms: float


AnyEvent = (
    GatewayCreated
    | GatewayUpdated
    | GatewayDeleted
    | TargetCreated
    | TargetUpdated
    | TargetDeleted
    | TargetSyncRequested
    | TargetAuthorizationRequired
    | TargetSynchronized
    | TargetSyncFailed
    | TokenIssued
    | TokenRefreshed
    | TokenRevoked
    | ConnectionsListed
    | AuthorizationFailed
    | ToolInvoked
)

EVENT_TYPES: tuple[type[Event], ...] = typing.get_args(AnyEvent)

_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_TAGS: dict[type[Event], str] = {cls: str(cls.__struct_config__.tag) for cls in EVENT_TYPES}
_encoder = msgspec.json.Encoder()

E = TypeVar("E", bound=Event)


def decode_event(data: bytes) -> AnyEvent:
    """Decode any event; raises ``msgspec.ValidationError``/``DecodeError`` on a bad payload."""
    try:
        return _decoder.decode(data)
    except UnicodeDecodeError:  # msgspec's answer to invalid UTF-8 inside a JSON string
        raise msgspec.DecodeError("JSON is malformed: a string is not UTF-8") from None


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def event_type(event: Event | type[Event]) -> str:
    """The tag, e.g. ``target.created``."""
    return _TAGS[event if isinstance(event, type) else type(event)]


def new_event(cls: type[E], *, source: str, correlation_id: str = "", **fields: Any) -> E:
    """Build an event with a fresh id and timestamp."""
    return cls(
        event_id=uuid.uuid4().hex,
        occurred_at=datetime.now(UTC),
        source=source,
        correlation_id=correlation_id,
        **fields,
    )
