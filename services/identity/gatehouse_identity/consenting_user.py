"""Identity checks who consents: an OpenID Connect login at the workload's own JWT issuer.

When a workload (a gateway) has a login client at its inbound issuer, a session for a user proven by
a JWT sends the browser there first (authorization code + PKCE + nonce). The ID token's ``iss`` and
``sub`` must be the session's user; anyone else ends the session for good. Only then does the browser
go on to the provider, so a consent link forwarded to someone else cannot be used to attach their
account to the user who asked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from gatehouse_contracts.jwt import InvalidToken, IssuerUnavailable

from .deps import Deps
from .oauth import challenge_of, new_state, new_verifier
from .session_binding import new_secret
from .workloads import login_secret_aad

LOGIN_PATH = "/identities/oauth2/login/callback"


def login_callback_url(deps: Deps) -> str:
    return deps.settings.identity_public_url.rstrip("/") + LOGIN_PATH


def login_verifier_aad(session_uri: str) -> str:
    return f"session:{session_uri}:login-verifier"


async def _login_client(deps: Deps, workload: str) -> tuple[str, dict[str, Any]]:
    """(discovery URL, stored login client) of a workload; ``IssuerUnavailable`` when it has none any more
    (both callers answer that as the sign-in service being unavailable)."""
    authorizer = (await deps.workloads.stored(workload)).get("jwtAuthorizer") or {}
    if not authorizer.get("loginClient"):
        raise IssuerUnavailable("the workload no longer has a login client")
    return authorizer["discoveryUrl"], authorizer["loginClient"]


async def login_url(deps: Deps, session: dict[str, Any], fields: dict[str, Any]) -> str:
    """Where to log the person in; puts the login's state, nonce and sealed verifier into ``fields``."""
    discovery, client = await _login_client(deps, session["workload"])
    endpoint = (await deps.jwt.metadata(discovery)).get("authorization_endpoint")
    if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise IssuerUnavailable("the issuer's metadata has no authorization_endpoint")
    state, nonce, verifier = new_state(), new_secret(), new_verifier()
    fields.update(
        loginState=state,
        loginNonce=nonce,
        loginVerifier=deps.vault.seal(verifier, login_verifier_aad(session["_id"])),
    )
    params = {
        "response_type": "code",
        "client_id": client["clientId"],
        "redirect_uri": login_callback_url(deps),
        "scope": "openid",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        "prompt": "login",
    }
    return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{urlencode(params)}"


async def user_of(deps: Deps, session: dict[str, Any], code: str) -> str:
    """The person the login proves, as identity names users (``jwt:<iss>#<sub>``)."""
    discovery, client = await _login_client(deps, session["workload"])
    meta = await deps.jwt.metadata(discovery)
    as_provider = {
        "name": "the sign-in service",
        "clientId": client["clientId"],
        "metadata": {
            "token_endpoint": meta.get("token_endpoint"),
            "token_endpoint_auth_methods": meta.get("token_endpoint_auth_methods_supported") or [],
        },
    }
    token = await deps.token_endpoint.exchange_code(
        as_provider,
        deps.vault.open(client["clientSecret"], login_secret_aad(session["workload"])),
        code,
        deps.vault.open(session["loginVerifier"], login_verifier_aad(session["_id"])),
        login_callback_url(deps),
    )
    if not token.id_token:
        raise InvalidToken("the sign-in service sent no ID token")
    claims = await deps.jwt.validate(token.id_token, discovery_url=discovery, audiences=[client["clientId"]])
    if claims.get("nonce") != session["loginNonce"]:
        raise InvalidToken("the ID token's nonce is not this login's")
    return f"jwt:{claims['iss']}#{claims['sub']}"
