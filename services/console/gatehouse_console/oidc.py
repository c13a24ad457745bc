"""Sign-in at an OpenID issuer: authorization code + PKCE (S256) + state + nonce.

Users sign in at their issuer (the CUSTOM_JWT gateways' inbound issuer); operators, optionally, at
the admin issuer (``ADMIN_JWT_DISCOVERY_URL``). The console keeps the access token (asked for the
APIs' audience with RFC 8707 ``resource``) server-side and sends it to the APIs, which validate it;
the console itself only reads the ID token's name for display."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from .api import ApiError
from .settings import Settings

CALLBACK_PATH = "/login/callback"


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    expires_at: float
    name: str


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT received straight from the token endpoint (OIDC Core 3.1.3.7: TLS to the
    issuer stands in for the signature check); only used to show a name and match the nonce."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class Client:
    """The console's client at one issuer."""

    discovery_url: str
    client_id: str
    client_secret: str
    scopes: str
    resource: str


def clients(settings: Settings) -> dict[str, Client]:
    """The sign-ins this console offers: ``user`` and ``admin``, each when configured."""
    offered = {}
    if settings.users_enabled:
        offered["user"] = Client(
            settings.console_oidc_discovery_url,
            settings.console_oidc_client_id,
            settings.console_oidc_client_secret,
            settings.console_oidc_scopes,
            settings.console_oidc_resource,
        )
    if settings.operators_oidc_enabled:
        offered["admin"] = Client(
            settings.admin_jwt_discovery_url,
            settings.console_admin_oidc_client_id,
            settings.console_admin_oidc_client_secret,
            settings.console_admin_oidc_scopes,
            settings.admin_jwt_audience,
        )
    return offered


class Login:
    def __init__(self, http: httpx.AsyncClient, public_url: str) -> None:
        self._http = http
        self.redirect_uri = public_url.rstrip("/") + CALLBACK_PATH
        self._metadata: dict[str, dict[str, Any]] = {}  # discovery URL -> metadata

    async def _meta(self, client: Client) -> dict[str, Any]:
        if client.discovery_url not in self._metadata:
            try:
                r = await self._http.get(client.discovery_url)
                r.raise_for_status()
                self._metadata[client.discovery_url] = dict(r.json())
            except (httpx.HTTPError, ValueError):
                raise ApiError(503, "the issuer is unreachable; try again") from None
        return self._metadata[client.discovery_url]

    async def start(self, client: Client) -> tuple[str, dict[str, str]]:
        """The issuer's authorization URL, and what the callback must find in the session."""
        pending = {
            "state": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(48),
            "nonce": secrets.token_urlsafe(32),
        }
        params = [
            ("response_type", "code"),
            ("client_id", client.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", client.scopes),
            ("state", pending["state"]),
            ("nonce", pending["nonce"]),
            ("code_challenge", _challenge(pending["verifier"])),
            ("code_challenge_method", "S256"),
        ]
        if client.resource:
            params.append(("resource", client.resource))
        return f"{(await self._meta(client))['authorization_endpoint']}?{urlencode(params)}", pending

    async def finish(self, client: Client, pending: dict[str, str], code: str) -> SignedIn:
        meta = await self._meta(client)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending["verifier"],
        }
        if client.resource:
            form["resource"] = client.resource
        auth = (client.client_id, client.client_secret)
        try:
            r = await self._http.post(meta["token_endpoint"], data=form, auth=auth)
            body = r.json()
        except (httpx.HTTPError, ValueError):
            raise ApiError(503, "the issuer is unreachable; try again") from None
        if r.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            raise ApiError(400, f"sign-in refused by the issuer: {error or r.status_code}")
        id_claims = _claims(str(body.get("id_token", "")))
        if id_claims.get("nonce") != pending["nonce"] or id_claims.get("iss") != meta.get("issuer"):
            raise ApiError(400, "sign-in refused: the ID token is not for this sign-in")
        lifetime = body.get("expires_in")
        expires_at = time.time() + (float(lifetime) if isinstance(lifetime, (int, float)) else 300.0)
        name = str(id_claims.get("name") or id_claims.get("sub") or "")
        return SignedIn(str(body["access_token"]), expires_at, name)
