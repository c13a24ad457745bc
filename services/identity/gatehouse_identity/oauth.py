"""Requests to a provider's token endpoint: client credentials, code exchange, refresh.

Written on httpx rather than authlib's client because RFC 8707 allows several ``resource``
parameters and authlib's httpx client folds repeated form fields into one. PKCE values come from
authlib. Provider answers become ``ProviderRefused`` (an OAuth error such as ``invalid_grant``) or
``ProviderUnavailable``; no token, code or secret ever reaches an error message.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gatehouse_contracts.netguard import denial
from gatehouse_contracts.outbound import Limits, ResponseTooLarge, fetch

from .errors import GatehouseError, Unavailable


class ProviderRefused(GatehouseError):
    status = 400
    code = "ProviderRefused"

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class ProviderUnavailable(Unavailable):
    pass


EARLY_RENEWAL_SECONDS = 30
NO_EXPIRY_RENEWAL_SECONDS = 240  # a token without expires_in is trusted this long (M2M cache)


@dataclass(frozen=True)
class Token:
    access_token: str
    refresh_token: str | None
    expires_at: float | None
    scope: str | None = None
    renew_at: float | None = None
    id_token: str | None = None  # OpenID Connect: identity's own login of the consenting person
    """When to stop handing the token out: a tenth of its lifetime (at most 30 s) before it expires,
    so it is still valid when used. A fixed margin would make a short-lived token (under 30 s)
    stale the moment it arrives and refresh it on every request."""


def new_verifier() -> str:
    """A PKCE code verifier (RFC 7636: 43-128 characters)."""
    return str(generate_token(64))


def challenge_of(verifier: str) -> str:
    """Its S256 code challenge."""
    return str(create_s256_code_challenge(verifier))


def new_state() -> str:
    return str(generate_token(40))


class TokenEndpoint:
    def __init__(self, http: httpx.AsyncClient, limits: Limits) -> None:
        self._http = http
        self._limits = limits

    async def _post(
        self, provider: dict[str, Any], client_secret: str, url: str, params: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        """POST a form to one of the provider's endpoints, authenticated as our client there."""
        methods = provider["metadata"].get("token_endpoint_auth_methods") or []
        form = list(params)
        headers = {"Accept": "application/json"}
        if "client_secret_basic" in methods or not methods:
            headers["Authorization"] = _basic(provider["clientId"], client_secret)
        else:
            form += [("client_id", provider["clientId"]), ("client_secret", client_secret)]
        return await fetch(self._http, "POST", url, self._limits, data=_as_form(form), headers=headers)

    async def revoke(self, provider: dict[str, Any], client_secret: str, token: str, hint: str) -> bool:
        """RFC 7009: ask the provider to revoke ``token``; True when it confirmed (HTTP 200). A
        provider without a revocation endpoint, or one that is down or refuses, gives False."""
        url = provider["metadata"].get("revocation_endpoint")
        if not url:
            return False
        params = [("token", token), ("token_type_hint", hint)]
        try:
            status, _ = await self._post(provider, client_secret, url, params)
        except (httpx.HTTPError, ResponseTooLarge):
            return False
        return status == 200

    async def request(
        self, provider: dict[str, Any], client_secret: str, params: list[tuple[str, str]]
    ) -> Token:
        url = provider["metadata"]["token_endpoint"]
        try:
            status, raw = await self._post(provider, client_secret, url, params)
        except ResponseTooLarge as exc:
            raise ProviderUnavailable(
                f"the authorization server of {provider['name']!r} sent too much: {exc}"
            ) from None
        except httpx.HTTPError as exc:
            why = denial(exc) or type(exc).__name__
            raise ProviderUnavailable(
                f"the authorization server of {provider['name']!r} is unreachable ({why})"
            ) from None
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                f"the authorization server of {provider['name']!r} answered HTTP {status} without JSON"
            )
        if status >= 400 or "error" in body:
            error = str(body.get("error", "server_error"))[:64]
            raise ProviderRefused(error, f"the authorization server of {provider['name']!r} refused: {error}")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderUnavailable(
                f"the authorization server of {provider['name']!r} sent no access token"
            )
        lifetime = _seconds(body.get("expires_in"))
        refresh = body.get("refresh_token")
        now = time.time()
        return Token(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=now + lifetime if lifetime is not None else None,
            scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
            id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
            renew_at=now + lifetime - min(EARLY_RENEWAL_SECONDS, lifetime / 10)
            if lifetime is not None
            else None,
        )

    async def client_credentials(
        self, provider: dict[str, Any], secret: str, scopes: list[str], resources: list[str]
    ) -> Token:
        params = [("grant_type", "client_credentials")] + _scope_and_resources(scopes, resources)
        return await self.request(provider, secret, params)

    async def exchange_code(
        self,
        provider: dict[str, Any],
        secret: str,
        code: str,
        verifier: str,
        redirect_uri: str,
        resources: Sequence[str] = (),
    ) -> Token:
        params = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ] + _scope_and_resources([], list(resources))
        return await self.request(provider, secret, params)

    async def refresh(
        self, provider: dict[str, Any], secret: str, refresh_token: str, resources: list[str]
    ) -> Token:
        params = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
        return await self.request(provider, secret, params + _scope_and_resources([], resources))


def _seconds(expires_in: Any) -> float | None:
    """``expires_in`` as a positive number of seconds; some servers send it as a string."""
    try:
        value = float(expires_in) if isinstance(expires_in, (int, float, str)) else None
    except ValueError:
        return None
    return value if value is not None and 0 < value < float("inf") else None


def _basic(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-encoded, then HTTP Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _scope_and_resources(scopes: list[str], resources: list[str]) -> list[tuple[str, str]]:
    params = [("scope", " ".join(scopes))] if scopes else []
    return params + [("resource", r) for r in resources]


def _as_form(params: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for key, value in params:
        form.setdefault(key, []).append(value)
    return form
