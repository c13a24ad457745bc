"""The target lifecycle, once: status names, allowed transitions, status documents, the stored shape.

The gateway writes a target's first status (an admin call); the sync-worker moves it on::

    create/update/synchronize --> CREATING | UPDATING | SYNCHRONIZING   (READY at once for inline tools)
    CREATING      --> READY | FAILED                   | CREATE_PENDING_AUTH      (or CREATING: a retry)
    UPDATING      --> READY | UPDATE_UNSUCCESSFUL      | UPDATE_PENDING_AUTH
    SYNCHRONIZING --> READY | SYNCHRONIZE_UNSUCCESSFUL | SYNCHRONIZE_PENDING_AUTH
    *_PENDING_AUTH --> READY (the admin consented) | the phase's failure (refused, or too late)

A target waiting for a consent refuses update, synchronize and delete (409). ``DELETING`` is only
shown in the answer to a delete; it is never stored. Every function here is pure: it takes the
current status and returns the next one; the services store it with a compare-and-set.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

CREATING = "CREATING"
UPDATING = "UPDATING"
SYNCHRONIZING = "SYNCHRONIZING"
READY = "READY"
FAILED = "FAILED"
UPDATE_UNSUCCESSFUL = "UPDATE_UNSUCCESSFUL"
SYNCHRONIZE_UNSUCCESSFUL = "SYNCHRONIZE_UNSUCCESSFUL"
CREATE_PENDING_AUTH = "CREATE_PENDING_AUTH"
UPDATE_PENDING_AUTH = "UPDATE_PENDING_AUTH"
SYNCHRONIZE_PENDING_AUTH = "SYNCHRONIZE_PENDING_AUTH"
DELETING = "DELETING"

NO_AUTHORIZATION_REQUIRED = "NO_AUTHORIZATION_REQUIRED"
NEEDS_AUTHORIZATION = "NEEDS_AUTHORIZATION"
AUTHORIZED = "AUTHORIZED"

# the phases a sync-worker picks up, and where each waits for a consent or ends when it fails
PENDING_FOR = {
    CREATING: CREATE_PENDING_AUTH,
    UPDATING: UPDATE_PENDING_AUTH,
    SYNCHRONIZING: SYNCHRONIZE_PENDING_AUTH,
}
FAILED_AFTER = {
    CREATING: FAILED,
    UPDATING: UPDATE_UNSUCCESSFUL,
    SYNCHRONIZING: SYNCHRONIZE_UNSUCCESSFUL,
}
FAILED_AFTER.update({pending: FAILED_AFTER[phase] for phase, pending in PENDING_FOR.items()})
IN_PROGRESS = tuple(PENDING_FOR)
PENDING = tuple(PENDING_FOR.values())
UNSUCCESSFUL = (FAILED, UPDATE_UNSUCCESSFUL, SYNCHRONIZE_UNSUCCESSFUL)
# where a target stays until someone acts (an admin, or the admin's consent)
AT_REST = (READY, *UNSUCCESSFUL, *PENDING)

# what an admin may ask of a target that waits for nothing: update (a sync, or READY with inline
# tools), synchronize, delete
_ADMIN = frozenset({UPDATING, READY, SYNCHRONIZING, DELETING})
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({CREATING, READY}),
    **{s: _ADMIN for s in (READY, *UNSUCCESSFUL)},
    **{phase: _ADMIN | {phase, READY, FAILED_AFTER[phase], PENDING_FOR[phase]} for phase in IN_PROGRESS},
    **{pending: frozenset({READY, FAILED_AFTER[pending]}) for pending in PENDING},
}

# the gateway's target ids; the consent user id ends with one followed by 32 hex digits
TARGET_ID_LENGTH = 10
_CONSENT_TAIL = TARGET_ID_LENGTH + 32


def allowed(current: str | None, new: str) -> bool:
    """Whether a target may go from ``current`` (None: not created yet) to ``new``."""
    return new in TRANSITIONS.get(current, frozenset())


def failed_status(phase: str) -> str:
    """The terminal status of a sync that failed in ``phase`` (CREATING or CREATE_PENDING_AUTH -> FAILED)."""
    return FAILED_AFTER.get(phase, FAILED)


class PendingConsent(msgspec.Struct, rename="camel", frozen=True):
    """The identity session an implicit sync waits on (``status.pending``)."""

    session_uri: str
    user_id: str
    expires_at: float


class OAuth2Consent(msgspec.Struct, rename="camel", frozen=True):
    """Where the admin consents for a waiting target, and as which (synthetic) user."""

    authorization_url: str
    user_id: str


class AuthorizationData(msgspec.Struct, frozen=True):
    """A waiting target's ``authorizationData`` (the admin API shows it as is)."""

    oauth2: OAuth2Consent


class TargetStatus(msgspec.Struct, rename="camel", frozen=True):
    """A target's ``status`` sub-document; a default is what a document without that field means."""

    status: str
    status_reasons: list[str] = []
    authorization_status: str = NO_AUTHORIZATION_REQUIRED
    last_synchronized_at: float | None = None
    tool_count: int = 0
    observed_generation: int = 0
    authorization_data: AuthorizationData | None = None
    pending: PendingConsent | None = None
    # the MCP version the target spoke at its last sync: "2026-07-28" (modern: per-request metadata)
    # or the version its initialize answered (handshake era); None before a sync and for inline tools
    protocol_version: str | None = None


class TargetSpec(msgspec.Struct, rename="camel", frozen=True):
    """What an admin asked for; ``grantType`` and ``defaultReturnUrl`` are copied from the credentials
    to the top for queries."""

    endpoint: str
    credentials: list[dict[str, Any]]
    inline_payload: str | None = None
    grant_type: str | None = None
    default_return_url: str | None = None


class Target(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """A stored target document (collection ``targets``); ``tools_json`` only when read with its tool
    cache (kept as one JSON blob: JSON Schemas hold keys, like ``$ref``, a document may not)."""

    id: str = msgspec.field(name="_id")
    gateway_id: str
    name: str
    description: str = ""
    spec: TargetSpec
    generation: int
    status: TargetStatus
    created_at: float
    updated_at: float
    stamp: str = ""
    outbox: bytes | None = None  # an outcome event stored but maybe not published (sync-worker)
    outbox_id: str | None = None
    tools_json: bytes | None = None


def document(target: Target) -> dict[str, Any]:
    """A target as MongoDB stores it (bytes stay bytes; a field at its default is left out)."""
    return msgspec.to_builtins(target, builtin_types=(bytes,))  # type: ignore[no-any-return]


def target(doc: dict[str, Any]) -> Target:
    """The typed view of a document read from MongoDB."""
    return msgspec.convert(doc, Target)


def stored(status: TargetStatus) -> dict[str, Any]:
    """A status as the sub-document MongoDB keeps."""
    return msgspec.to_builtins(status)  # type: ignore[no-any-return]


# -- the status documents, one per transition --------------------------------------------------


def initial(
    phase: str, generation: int, *, tool_count: int | None, user_auth: bool, now: float
) -> TargetStatus:
    """The status an admin create (``CREATING``) or update (``UPDATING``) leaves: READY with inline
    tools (``tool_count``), else the phase the sync-worker picks up."""
    if tool_count is not None:
        return TargetStatus(
            READY, [], NO_AUTHORIZATION_REQUIRED, now, tool_count=tool_count, observed_generation=generation
        )
    return TargetStatus(
        phase,
        [],
        NEEDS_AUTHORIZATION if user_auth else NO_AUTHORIZATION_REQUIRED,
        None,
        tool_count=0,
        observed_generation=generation,
    )


def synchronizing(current: TargetStatus) -> TargetStatus:
    """An admin asked for a sync: the rest of the status (tools, authorization) stays as it was."""
    return msgspec.structs.replace(current, status=SYNCHRONIZING, status_reasons=[])


def deleting(current: TargetStatus) -> TargetStatus:
    """What the answer to a delete shows (never stored)."""
    return msgspec.structs.replace(current, status=DELETING)


def ready(
    tool_count: int, now: float, *, consented: bool = False, protocol_version: str | None = None
) -> TargetStatus:
    """A sync listed ``tool_count`` tools (after an admin's consent when ``consented``), speaking
    ``protocol_version`` with the target."""
    authorization = AUTHORIZED if consented else NO_AUTHORIZATION_REQUIRED
    return TargetStatus(
        READY, [], authorization, now, tool_count=tool_count, protocol_version=protocol_version
    )


def retrying(current: TargetStatus, why: str) -> TargetStatus:
    """A sync attempt failed and will be retried: the phase stays, the reason says so."""
    return msgspec.structs.replace(current, status_reasons=[why])


def failed(current: TargetStatus, why: str) -> TargetStatus:
    """A sync (or the consent it waited for) failed for good; a failed target waits for nothing."""
    return msgspec.structs.replace(
        current,
        status=failed_status(current.status),
        status_reasons=[why],
        authorization_data=None,
        pending=None,
    )


def awaiting_consent(current: TargetStatus, authorization_url: str, session: PendingConsent) -> TargetStatus:
    """The sync of an AUTHORIZATION_CODE target waits for the admin to consent at ``authorization_url``."""
    return msgspec.structs.replace(
        current,
        status=PENDING_FOR[current.status],
        status_reasons=[],
        authorization_status=NEEDS_AUTHORIZATION,
        authorization_data=AuthorizationData(OAuth2Consent(authorization_url, session.user_id)),
        pending=session,
    )


# -- the synthetic user an implicit sync consents as -------------------------------------------


def consent_user_id(gateway_id: str, target_id: str) -> str:
    """A fresh user ``<gatewayId><targetId><uuid hex>`` for one consent: never one a person has, and
    the target can be read back from it (``consent_target``)."""
    return f"{gateway_id}{target_id}{uuid.uuid4().hex}"


def consent_target(identity_user_id: str) -> str | None:
    """The target id inside a consent user id as identity's events spell it (``id:<user id>``);
    None for any other user."""
    user = identity_user_id.removeprefix("id:")
    if user == identity_user_id or len(user) <= _CONSENT_TAIL:
        return None
    return user[-_CONSENT_TAIL:-32]
