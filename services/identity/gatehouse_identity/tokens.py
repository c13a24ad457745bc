"""Token operations: workload access tokens, resource tokens (M2M and per user), completing a consent.

Users are named by one string everywhere (vault keys, sessions, events): ``jwt:<iss>#<sub>`` for a
user proven by a JWT, ``id:<userId>`` for a user named by a privileged caller.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from gatehouse_contracts import rpc
from gatehouse_contracts.events import AuthorizationFailed, AuthorizationFailure, TokenIssued, new_event
from gatehouse_contracts.jwt import InvalidToken

from .deps import Caller, Deps
from .errors import BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, VaultUnreadable
from .metrics import CONSENTS_STARTED
from .oauth import NO_EXPIRY_RENEWAL_SECONDS, ProviderRefused, Token, new_state, new_verifier
from .providers import callback_url
from .session_binding import code_aad, digest
from .vault_tokens import drop_user_token, store_token, token_event, usable_token

log = logging.getLogger("gatehouse.identity.tokens")
SOURCE = "identity"
REFUSED = "Invalid or expired session"
RESERVED_PARAMETERS = {
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "request_uri",
}


# --- workload access tokens -------------------------------------------------------------------


async def user_from_jwt(deps: Deps, workload: rpc.WorkloadIdentity, user_token: str) -> str:
    """The user a JWT proves, checked against the issuer the workload trusts."""
    authorizer = workload.jwt_authorizer
    if authorizer is None:
        raise BadRequest(
            f"workload identity {workload.name!r} trusts no JWT issuer (jwtAuthorizer is not set)"
        )
    claims = await deps.jwt.validate(
        user_token,
        discovery_url=authorizer.discovery_url,
        audiences=authorizer.allowed_audience,
        clients=authorizer.allowed_clients,
        scopes=authorizer.allowed_scopes,
    )
    return f"jwt:{claims['iss']}#{claims['sub']}"


def _user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= 256 or not user_id.isprintable():
        raise BadRequest("userId must be 1-256 printable characters")
    return f"id:{user_id}"


async def workload_token(
    deps: Deps, req: rpc.GetWorkloadAccessToken, caller: Caller
) -> rpc.WorkloadAccessToken:
    caller.check_workload(await deps.workloads.get(req.workload_name))
    return rpc.WorkloadAccessToken(workload_access_token=deps.signer.issue(req.workload_name, None))


async def workload_token_for_jwt(
    deps: Deps, req: rpc.GetWorkloadAccessTokenForJWT, caller: Caller
) -> rpc.WorkloadAccessToken:
    if caller.service == "sync-worker":
        raise Forbidden("the sync-worker acts for admins, not for users proven by a JWT")
    workload = await deps.workloads.get(req.workload_name)
    caller.check_workload(workload)
    try:
        user = await user_from_jwt(deps, workload, req.user_token)
    except InvalidToken as exc:
        raise Unauthorized(f"the user token is not valid: {exc}") from None
    return rpc.WorkloadAccessToken(workload_access_token=deps.signer.issue(req.workload_name, user))


async def workload_token_for_user_id(
    deps: Deps, req: rpc.GetWorkloadAccessTokenForUserId, caller: Caller
) -> rpc.WorkloadAccessToken:
    if not caller.privileged or caller.service == "gateway":
        raise Forbidden("GetWorkloadAccessTokenForUserId is for admins and the sync-worker only")
    caller.check_workload(await deps.workloads.get(req.workload_name))
    user = _user_id(req.user_id)
    return rpc.WorkloadAccessToken(workload_access_token=deps.signer.issue(req.workload_name, user))


# --- resource tokens ----------------------------------------------------------------------------


def vault_key(workload: str, user: str, provider_id: str, scopes: list[str], resources: list[str]) -> str:
    raw = "\x00".join([workload, user, provider_id, " ".join(scopes), " ".join(sorted(resources))])
    return hashlib.sha256(raw.encode()).hexdigest()


async def resource_token(
    deps: Deps, req: rpc.GetResourceOauth2Token, caller: Caller
) -> rpc.ResourceOauth2Token:
    try:
        workload_name, user = deps.signer.verify(req.workload_identity_token)
    except ValueError as exc:
        raise Unauthorized(str(exc)) from None
    provider = await deps.providers.store.by_name(req.resource_credential_provider_name)
    scopes = sorted(set(req.scopes))
    if req.oauth2_flow == "M2M":
        return rpc.ResourceOauth2Token(access_token=await _m2m(deps, provider, scopes, req.resources))
    if user is None:
        raise BadRequest("USER_FEDERATION needs a workload access token for a user (ForJWT or ForUserId)")
    key = vault_key(workload_name, user, provider["_id"], scopes, req.resources)
    if req.session_uri:
        return await _poll(deps, req.session_uri, workload_name, user, key, provider)
    if req.force_authentication:
        await drop_user_token(deps, key, "authentication forced")  # under the lock a refresh takes
    elif (stored := await usable_token(deps, key, provider)) is not None:
        return rpc.ResourceOauth2Token(access_token=stored[0], expires_at=stored[1])
    return await _start_session(deps, req, workload_name, user, provider, scopes, key)


async def _m2m(deps: Deps, provider: dict[str, Any], scopes: list[str], resources: list[str]) -> str:
    """A client-credentials token, cached until shortly before it expires (see ``Token.renew_at``).

    The key holds the provider's ``updatedAt``: after an update (another client, another secret)
    the next call fetches a token from the new registration instead of serving the old one.
    """
    cache_key = (provider["_id"], str(provider["updatedAt"]), " ".join(scopes), " ".join(sorted(resources)))
    async with deps.lock("m2m:" + "|".join(cache_key)):
        cached = deps.m2m_cache.get(cache_key)
        if cached and cached[1] > time.time():
            return cached[0]
        token = await deps.token_endpoint.client_credentials(
            provider, deps.providers.client_secret(provider), scopes, resources
        )
        now = time.time()
        for stale in [k for k, (_, renew_at) in deps.m2m_cache.items() if renew_at <= now]:
            del deps.m2m_cache[stale]
        deps.m2m_cache[cache_key] = (token.access_token, token.renew_at or now + NO_EXPIRY_RENEWAL_SECONDS)
        return token.access_token


async def _start_session(
    deps: Deps,
    req: rpc.GetResourceOauth2Token,
    workload_name: str,
    user: str,
    provider: dict[str, Any],
    scopes: list[str],
    key: str,
) -> rpc.ResourceOauth2Token:
    if clash := RESERVED_PARAMETERS & set(req.custom_parameters):
        raise BadRequest(f"customParameters may not set standard parameters: {sorted(clash)}")
    workload = await deps.workloads.get(workload_name)
    allowed = workload.allowed_resource_oauth2_return_urls
    return_url = req.resource_oauth2_return_url
    # identity checks who consents when the workload has a login client at its users' issuer; with
    # no return URL asked for, it then also completes the session itself (no app needed)
    verify_user = bool(workload.jwt_authorizer and workload.jwt_authorizer.login_client) and user.startswith(
        "jwt:"
    )
    if return_url is None and not verify_user:
        if len(allowed) != 1:
            raise BadRequest("resourceOauth2ReturnUrl is required (the workload allows several or none)")
        return_url = allowed[0]
    if return_url is not None and return_url not in allowed:
        raise BadRequest(
            f"resourceOauth2ReturnUrl is not on the allow-list of workload identity {workload_name!r}"
        )
    session_uri = f"urn:ietf:params:oauth:request_uri:{secrets.token_urlsafe(32)}"
    verifier = new_verifier()
    now = time.time()
    await deps.sessions.insert(
        {
            "_id": session_uri,
            "state": new_state(),
            "status": "IN_PROGRESS",
            "workload": workload_name,
            "user": user,
            "providerId": provider["_id"],
            "providerName": provider["name"],
            "scopes": scopes,
            "resources": req.resources,
            "customParameters": req.custom_parameters,
            "returnUrl": return_url,
            "verifyUser": verify_user,
            "verifier": deps.vault.seal(verifier, f"session:{session_uri}:verifier"),
            "vaultKey": key,
            "createdAt": now,
            "expiresAt": now + deps.settings.identity_session_ttl_seconds,
        }
    )
    CONSENTS_STARTED.inc()
    return _pending(deps, session_uri, now + deps.settings.identity_session_ttl_seconds)


def authorization_url(deps: Deps, session_uri: str) -> str:
    base = deps.settings.identity_public_url.rstrip("/")
    return f"{base}/identities/oauth2/authorize?{urlencode({'request_uri': session_uri})}"


def _pending(deps: Deps, session_uri: str, expires_at: float) -> rpc.ResourceOauth2Token:
    return rpc.ResourceOauth2Token(
        authorization_url=authorization_url(deps, session_uri),
        session_uri=session_uri,
        session_status="IN_PROGRESS",
        session_expires_at=expires_at,
    )


async def _poll(
    deps: Deps, session_uri: str, workload: str, user: str, key: str, provider: dict[str, Any]
) -> rpc.ResourceOauth2Token:
    session = await deps.sessions.get(session_uri)
    if (
        session is None
        or session["workload"] != workload
        or session["user"] != user
        or session["vaultKey"] != key
    ):
        raise Forbidden(REFUSED)
    if session["status"] == "COMPLETED":
        if (stored := await usable_token(deps, key, provider)) is not None:
            return rpc.ResourceOauth2Token(access_token=stored[0], expires_at=stored[1])
        raise Forbidden(REFUSED)
    if session["status"] == "FAILED":
        return rpc.ResourceOauth2Token(session_uri=session_uri, session_status="FAILED")
    if session["expiresAt"] <= time.time():
        raise Forbidden(REFUSED)
    return _pending(deps, session_uri, session["expiresAt"])


# --- completing a consent -----------------------------------------------------------------------


async def publish_failure(deps: Deps, reason: AuthorizationFailure, session: dict[str, Any] | None) -> None:
    """``identity.authorization_failed``: names the session, never a handle, code or cookie."""
    log.info("authorization refused: %s", reason)
    await deps.publish(
        new_event(
            AuthorizationFailed,
            source=SOURCE,
            reason=reason,
            session_uri=session["_id"] if session else "",
            workload_name=session["workload"] if session else "",
            user_id=session["user"] if session else "",
            provider_name=session["providerName"] if session else "",
        )
    )


async def _refuse(deps: Deps, reason: AuthorizationFailure, session: dict[str, Any] | None) -> Forbidden:
    """Publish the failure and give the one refusal every failure shares."""
    await publish_failure(deps, reason, session)
    return Forbidden(REFUSED)


async def complete(deps: Deps, req: rpc.CompleteResourceTokenAuth, caller: Caller) -> rpc.Completed:
    """Exchange the code of the session whose completion handle this is, for its own user only.

    The handle reached only the browser that consented (at the return URL); the ``request_uri`` of
    the authorization URL is not a handle and completes nothing. A user other than the one who
    started the session ends it for good.
    """
    handle = req.session_uri
    session = await deps.sessions.find_by("handle", digest(handle)) if handle else None
    now = time.time()
    if session is None or (req.request_uri is not None and req.request_uri != session["_id"]):
        raise await _refuse(deps, "unknown_session", None)
    if session["status"] in ("COMPLETING", "COMPLETED"):
        raise await _refuse(deps, "replayed", session)
    if session["expiresAt"] <= now:
        raise await _refuse(deps, "expired", session)
    if session["status"] == "FAILED":
        mismatch = session.get("failedBecause") == "user_mismatch"
        raise await _refuse(deps, "user_mismatch" if mismatch else "provider_error", session)
    who = req.user_identifier
    if (who.user_token is None) == (who.user_id is None):
        raise BadRequest("userIdentifier takes exactly one of userToken or userId")
    if who.user_token is not None:
        try:
            user = await user_from_jwt(deps, await deps.workloads.get(session["workload"]), who.user_token)
        except (InvalidToken, BadRequest, NotFound):
            # also a workload that trusts no issuer (its sessions are for user ids) or is gone:
            # the caller learns no more than from any other refusal
            raise await _refuse(deps, "invalid_user_token", session) from None
    else:
        if not caller.privileged:
            raise await _refuse(deps, "not_permitted", session)
        user = _user_id(who.user_id or "")
    if user != session["user"]:
        await deps.sessions.fail(session["_id"], "user_mismatch")
        raise await _refuse(deps, "user_mismatch", session)
    claimed = await deps.sessions.transition(
        {"_id": session["_id"]}, "CODE_RECEIVED", {"status": "COMPLETING"}, now
    )
    if claimed is None:
        raise await _refuse(deps, "replayed", session)
    await finish(deps, claimed)
    return rpc.Completed()


async def finish(deps: Deps, claimed: dict[str, Any]) -> None:
    """Exchange a claimed (COMPLETING) session's code, keep the token, say so on the bus."""
    token, provider = await _exchange(deps, claimed)
    await store_token(deps, claimed, provider, token)
    uri = claimed["_id"]
    await deps.sessions.set_fields(uri, {"status": "COMPLETED", "code": None, "verifier": None})
    await deps.publish(token_event(TokenIssued, claimed, session_uri=uri))


async def _exchange(deps: Deps, session: dict[str, Any]) -> tuple[Token, dict[str, Any]]:
    uri = session["_id"]
    provider = await deps.providers.store.by_id(session["providerId"])
    if provider is None:
        await deps.sessions.fail(uri, "provider_error")
        raise BadRequest("the session's credential provider was deleted")
    try:
        code = deps.vault.open(session["code"], code_aad(session["state"]))
        verifier = deps.vault.open(session["verifier"], f"session:{uri}:verifier")
    except VaultUnreadable:  # never readable again: end the session rather than leave it COMPLETING
        await deps.sessions.fail(uri, "vault_key_unavailable")
        raise
    try:
        token = await deps.token_endpoint.exchange_code(
            provider,
            deps.providers.client_secret(provider),
            code,
            verifier,
            callback_url(deps.settings.identity_public_url, provider["_id"]),
            session["resources"],
        )
    except ProviderRefused:
        await deps.sessions.fail(uri, "provider_error")
        raise await _refuse(deps, "provider_error", session) from None
    except Unavailable:
        await deps.sessions.set_fields(uri, {"status": "CODE_RECEIVED"})  # the user may try again
        raise
    return token, provider
