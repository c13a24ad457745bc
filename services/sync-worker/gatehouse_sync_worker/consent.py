"""Implicit sync of an authorization-code target: the admin consents once, then the sync resumes.

1. ``begin``: a fresh synthetic user (``lifecycle.consent_user_id``), a forced new consent session at
   identity -> the target waits in ``*_PENDING_AUTH`` with ``authorizationData.oauth2``.
2. ``resume`` on ``identity.token_issued`` for that session: fetch the token, list the tools ->
   ``READY``/``AUTHORIZED``.
3. ``expire``: a pending session past its lifetime -> ``FAILED`` / ``*_UNSUCCESSFUL`` with a reason.
Every status write is a compare-and-set on generation and status, so replays change nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gatehouse_contracts import lifecycle, rpc
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.events import (
    TargetAuthorizationRequired,
    TargetSyncFailed,
    TargetSynchronized,
    TokenIssued,
)
from gatehouse_contracts.lifecycle import PENDING, PendingConsent, Target

from .deps import Deps, SyncEvent, list_tools_with, record, target_event
from .status import NoTargetToken

log = logging.getLogger("gatehouse.sync.consent")


async def _user_token(deps: Deps, gateway_id: str, user_id: str) -> str:
    answer = await deps.identity.call(
        rpc.GetWorkloadAccessTokenForUserId(workload_name=gateway_id, user_id=user_id),
        rpc.WorkloadAccessToken,
    )
    return answer.workload_access_token


async def _resource_token(
    deps: Deps, gateway_id: str, user_id: str, oauth: dict[str, Any], endpoint: str, **options: Any
) -> rpc.ResourceOauth2Token:
    try:
        return await deps.identity.call(
            rpc.GetResourceOauth2Token(
                workload_identity_token=await _user_token(deps, gateway_id, user_id),
                resource_credential_provider_name=oauth["providerName"],
                scopes=oauth.get("scopes", []),
                oauth2_flow="USER_FEDERATION",
                custom_parameters=oauth.get("customParameters", {}),
                resources=[endpoint],
                **options,
            ),
            rpc.ResourceOauth2Token,
        )
    except GatehouseError as exc:
        raise NoTargetToken.refused_by_identity(exc) from None


async def begin(deps: Deps, event: SyncEvent, doc: Target, oauth: dict[str, Any]) -> None:
    """Start a consent for the sync ``event`` asks for (a sync never reuses an earlier token)."""
    user_id = lifecycle.consent_user_id(event.gateway_id, event.target_id)
    answer = await _resource_token(
        deps,
        event.gateway_id,
        user_id,
        oauth,
        doc.spec.endpoint,
        resource_oauth2_return_url=oauth.get("defaultReturnUrl"),
        force_authentication=True,
    )
    if not answer.authorization_url or not answer.session_uri:
        raise NoTargetToken("identity started no authorization session", retryable=False)
    session = PendingConsent(answer.session_uri, user_id, answer.session_expires_at or time.time() + 600)
    status = lifecycle.awaiting_consent(doc.status, answer.authorization_url, session)
    await record(
        deps,
        status,
        None,
        target_event(
            TargetAuthorizationRequired,
            event.gateway_id,
            event.target_id,
            event.generation,
            event.event_id,
            user_id=user_id,
        ),
        expect_status=doc.status.status,
    )


async def resume(deps: Deps, event: TokenIssued, doc: Target, pending: PendingConsent) -> None:
    """The admin consented in the session ``pending``: list the tools with that token and finish the sync."""
    oauth = doc.spec.credentials[0]["credentialProvider"]["oauthCredentialProvider"]
    endpoint = doc.spec.endpoint
    answer = await _resource_token(
        deps, doc.gateway_id, pending.user_id, oauth, endpoint, session_uri=pending.session_uri
    )
    if not answer.access_token:
        raise NoTargetToken("identity has no token for the completed session", retryable=False)
    listed = await list_tools_with(deps, endpoint, {"Authorization": f"Bearer {answer.access_token}"})
    tools = listed.tools
    if await record(
        deps,
        lifecycle.ready(len(tools), time.time(), consented=True, protocol_version=listed.protocol_version),
        tools,
        target_event(
            TargetSynchronized,
            doc.gateway_id,
            doc.id,
            doc.generation,
            event.event_id,
            tool_count=len(tools),
        ),
        expect_status=doc.status.status,
    ):
        log.info("target %s synchronized after consent: %d tools", doc.id, len(tools))


async def fail(deps: Deps, doc: Target, reason: str, correlation_id: str = "") -> None:
    """End a pending implicit sync with ``reason``."""
    await record(
        deps,
        lifecycle.failed(doc.status, reason),
        None,
        target_event(
            TargetSyncFailed,
            doc.gateway_id,
            doc.id,
            doc.generation,
            correlation_id,
            reason=reason,
            attempt=1,
            terminal=True,
        ),
        expect_status=doc.status.status,
    )


async def expire(deps: Deps) -> None:
    """Fail every implicit sync whose consent session ran out (any replica may do it; CAS makes it once)."""
    for doc in await deps.store.expired_pending(PENDING, time.time()):
        log.info("the consent for target %s was not given in time", doc.id)
        await fail(
            deps, doc, "The authorization was not completed in time; synchronize the target to try again"
        )
