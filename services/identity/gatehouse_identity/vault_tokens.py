"""The vault's rules: a stored token is handed out while fresh, refreshed when stale, dropped when dead."""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

from gatehouse_contracts.events import Event, TokenRefreshed, TokenRevoked, new_event

from .deps import Deps
from .oauth import EARLY_RENEWAL_SECONDS, ProviderRefused, Token

log = logging.getLogger("gatehouse.identity.vault")
SOURCE = "identity"
E = TypeVar("E", bound=Event)


def token_event(cls: type[E], doc: dict[str, Any], **fields: Any) -> E:
    """A token lifecycle event about a vault record or a session (both name workload, user,
    provider and scopes the same way)."""
    return new_event(
        cls,
        source=SOURCE,
        workload_name=doc["workload"],
        user_id=doc["user"],
        provider_name=doc["providerName"],
        scopes=doc["scopes"],
        **fields,
    )


def _aad(key: str, kind: str) -> str:
    return f"vault:{key}:{kind}"


async def store_token(deps: Deps, session: dict[str, Any], provider: dict[str, Any], token: Token) -> None:
    key = session["vaultKey"]
    await deps.tokens.put(
        {
            "_id": key,
            "workload": session["workload"],
            "user": session["user"],
            "providerId": provider["_id"],
            "providerName": provider["name"],
            "scopes": session["scopes"],
            "resources": session["resources"],
            "access": deps.vault.seal(token.access_token, _aad(key, "access")),
            "refresh": deps.vault.seal(token.refresh_token, _aad(key, "refresh"))
            if token.refresh_token
            else None,
            "expiresAt": token.expires_at,
            "renewAt": token.renew_at,
            "authorizedAt": time.time(),  # the consent; updatedAt also moves with each refresh
            "updatedAt": time.time(),
        }
    )


async def drop(deps: Deps, key: str, reason: str, *, revoke: bool = False) -> bool | None:
    """Delete a vault entry and say so (``identity.token_revoked``); with ``revoke``, first ask the
    provider to revoke its tokens (RFC 7009). None when there was no entry, else whether the
    provider confirmed a revocation."""
    doc = await deps.tokens.get(key)
    if doc is None:
        return None
    revoked = await _revoke_at_provider(deps, key, doc) if revoke else False
    if await deps.tokens.delete(key):
        await deps.publish(token_event(TokenRevoked, doc, reason=reason, revoked_at_provider=revoked))
    return revoked


async def _revoke_at_provider(deps: Deps, key: str, doc: dict[str, Any]) -> bool:
    """The refresh token first (a provider revokes the grant's access tokens with it), then the
    access token; True if the provider confirmed either."""
    provider = await deps.providers.store.by_id(doc["providerId"])
    if provider is None:
        return False
    secret = deps.providers.client_secret(provider)
    confirmed = False
    for kind, hint in (("refresh", "refresh_token"), ("access", "access_token")):
        if doc.get(kind):
            token = deps.vault.open(doc[kind], _aad(key, kind))
            confirmed = await deps.token_endpoint.revoke(provider, secret, token, hint) or confirmed
    return confirmed


async def usable_token(deps: Deps, key: str, provider: dict[str, Any]) -> tuple[str, float | None] | None:
    """The stored access token and when to stop using it (renew), refreshed first if it is (about
    to be) expired; None if there is none."""
    async with deps.lock("vault:" + key):
        doc = await deps.tokens.get(key)
        if doc is None:
            return None
        expires_at = doc.get("expiresAt")
        renew_at = doc.get("renewAt") or (expires_at - EARLY_RENEWAL_SECONDS if expires_at else None)
        if renew_at is None or renew_at > time.time():
            return deps.vault.open(doc["access"], _aad(key, "access")), renew_at
        if not doc.get("refresh"):
            await drop(deps, key, "expired without a refresh token")
            return None
        refresh_token = deps.vault.open(doc["refresh"], _aad(key, "refresh"))
        try:
            token = await deps.token_endpoint.refresh(
                provider, deps.providers.client_secret(provider), refresh_token, doc.get("resources", [])
            )
        except ProviderRefused as exc:
            log.info("refresh refused (%s): dropping the stored token", exc.error)
            await drop(deps, key, f"refresh refused: {exc.error}")
            return None
        doc["access"] = deps.vault.seal(token.access_token, _aad(key, "access"))
        if token.refresh_token:
            doc["refresh"] = deps.vault.seal(token.refresh_token, _aad(key, "refresh"))
        doc["expiresAt"] = token.expires_at
        doc["renewAt"] = token.renew_at
        doc["updatedAt"] = time.time()
        await deps.tokens.put(doc)
        await deps.publish(
            token_event(
                TokenRefreshed,
                doc,
            )
        )
        return token.access_token, token.renew_at


async def drop_user_token(deps: Deps, key: str, reason: str, *, revoke: bool = False) -> bool | None:
    async with deps.lock("vault:" + key):
        return await drop(deps, key, reason, revoke=revoke)


async def drop_provider(deps: Deps, provider_id: str) -> None:
    """Drop every vault entry and authorization session of a provider whose registration changed
    or went away: they belong to the old one (another client, another authorization server)."""
    for key in await deps.tokens.keys_of_provider(provider_id):
        await drop_user_token(deps, key, "the credential provider's registration changed")
    await deps.sessions.delete_by_provider(provider_id)
