"""Implicit sync of an authorization-code target: the admin consents once, then the sync resumes.

1. ``begin``: a fresh synthetic user ``<gatewayId><targetId><uuid>``, a forced new consent session at
   identity -> the target waits in ``*_PENDING_AUTH`` with ``authorizationData.oauth2``.
2. ``resume`` on ``identity.token_issued`` for that session: fetch the token, list the tools ->
   ``READY``/``AUTHORIZED``.
3. ``expire``: a pending session past its lifetime -> ``FAILED`` / ``*_UNSUCCESSFUL`` with a reason.
Every status write is a compare-and-set on generation and status, so replays change nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from gatehouse_contracts import rpc
from gatehouse_contracts.errors import GatehouseError, Unavailable
from gatehouse_contracts.events import (
    TargetAuthorizationRequired,
    TargetSyncFailed,
    TargetSynchronized,
    TokenIssued,
)

from .deps import Deps, SyncEvent, list_tools_with, record, target_event
from .status import PENDING, PENDING_FOR, NoTargetToken, failed_status

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
    except Unavailable as exc:
        raise NoTargetToken(exc.message, retryable=True) from None
    except GatehouseError as exc:
        raise NoTargetToken(exc.message, retryable=False) from None


async def begin(deps: Deps, event: SyncEvent, doc: dict[str, Any], oauth: dict[str, Any]) -> None:
    """Start a consent for the sync ``event`` asks for (a sync never reuses an earlier token)."""
    phase = doc["status"]["status"]
    user_id = f"{event.gateway_id}{event.target_id}{uuid.uuid4().hex}"
    answer = await _resource_token(
        deps,
        event.gateway_id,
        user_id,
        oauth,
        doc["spec"]["endpoint"],
        resource_oauth2_return_url=oauth.get("defaultReturnUrl"),
        force_authentication=True,
    )
    if not answer.authorization_url or not answer.session_uri:
        raise NoTargetToken("identity started no authorization session", retryable=False)
    status = {
        **doc["status"],
        "status": PENDING_FOR[phase],
        "statusReasons": [],
        "authorizationStatus": "NEEDS_AUTHORIZATION",
        "authorizationData": {"oauth2": {"authorizationUrl": answer.authorization_url, "userId": user_id}},
        "pending": {
            "sessionUri": answer.session_uri,
            "userId": user_id,
            "expiresAt": answer.session_expires_at or time.time() + 600,
        },
    }
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
        expect_status=phase,
    )


async def resume(deps: Deps, event: TokenIssued, doc: dict[str, Any]) -> None:
    """The admin consented: list the tools with that token and finish the sync."""
    pending_status = doc["status"]["status"]
    pending = doc["status"]["pending"]
    oauth = doc["spec"]["credentials"][0]["credentialProvider"]["oauthCredentialProvider"]
    endpoint = doc["spec"]["endpoint"]
    answer = await _resource_token(
        deps, doc["gatewayId"], pending["userId"], oauth, endpoint, session_uri=pending["sessionUri"]
    )
    if not answer.access_token:
        raise NoTargetToken("identity has no token for the completed session", retryable=False)
    tools = await list_tools_with(deps, endpoint, {"Authorization": f"Bearer {answer.access_token}"})
    status = {
        "status": "READY",
        "statusReasons": [],
        "authorizationStatus": "AUTHORIZED",
        "lastSynchronizedAt": time.time(),
        "toolCount": len(tools),
    }
    if await record(
        deps,
        status,
        tools,
        target_event(
            TargetSynchronized,
            doc["gatewayId"],
            doc["_id"],
            doc["generation"],
            event.event_id,
            tool_count=len(tools),
        ),
        expect_status=pending_status,
    ):
        log.info("target %s synchronized after consent: %d tools", doc["_id"], len(tools))


async def fail(deps: Deps, doc: dict[str, Any], reason: str, correlation_id: str = "") -> None:
    """End a pending implicit sync with ``reason``."""
    pending_status = doc["status"]["status"]
    status = {
        **{k: v for k, v in doc["status"].items() if k not in ("pending", "authorizationData")},
        "status": failed_status(pending_status),
        "statusReasons": [reason],
    }
    await record(
        deps,
        status,
        None,
        target_event(
            TargetSyncFailed,
            doc["gatewayId"],
            doc["_id"],
            doc["generation"],
            correlation_id,
            reason=reason,
            attempt=1,
            terminal=True,
        ),
        expect_status=pending_status,
    )


async def expire(deps: Deps) -> None:
    """Fail every implicit sync whose consent session ran out (any replica may do it; CAS makes it once)."""
    for doc in await deps.store.expired_pending(PENDING, time.time()):
        log.info("the consent for target %s was not given in time", doc["_id"])
        await fail(
            deps, doc, "The authorization was not completed in time; synchronize the target to try again"
        )
