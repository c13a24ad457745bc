"""Validating users' JWTs against an issuer's discovery document and JWKS (gateway and identity both do).

The JWKS is cached per issuer and fetched again when a token names a key id we do not know
(at most every ``min_refresh_seconds``), so a key rotation at the issuer needs no restart. Fetches
are single-flight per URL: concurrent validations against one issuer wait for one fetch, and a
slow issuer holds up only its own tokens. Answers are size-limited (``max_bytes``), and a discovery
document must name the issuer its URL was formed from (RFC 8414 §3.3, OIDC Discovery §4.3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .errors import Unauthorized, Unavailable
from .netguard import EndpointDenied, EndpointGuard
from .outbound import FetchFailed, Limits, get_json

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class InvalidToken(Unauthorized):
    """The token is not acceptable; the message says why and never contains the token."""


class IssuerUnavailable(Unavailable):
    """The issuer's discovery document or JWKS could not be fetched; the message says so itself, so
    it reaches callers (a 503 from either service's one handler) without another wrapper."""

    def __init__(self, why: str) -> None:
        super().__init__(f"the token issuer is unavailable: {why}")


def issuer_mismatch(discovery_url: str, issuer: Any) -> str | None:
    """Why a discovery document's ``issuer`` does not fit the URL it was read from, or None.

    The URL must be the issuer with ``/.well-known/openid-configuration`` appended (OIDC) or with
    ``/.well-known/oauth-authorization-server`` (or the OIDC name) put between host and path (RFC
    8414); issuers that append the RFC 8414 name are accepted too, as most clients do.
    """
    if not isinstance(issuer, str) or not issuer:
        return "the discovery document names no issuer"
    base = issuer.rstrip("/")
    parts = urlsplit(base)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path
    names = ("oauth-authorization-server", "openid-configuration")
    forms = {f"{origin}/.well-known/{name}{path}" for name in names} | {
        f"{base}/.well-known/{name}" for name in names
    }
    if discovery_url in forms:
        return None
    return (
        f"the discovery document's issuer {issuer[:200]!r} does not match the URL it was read from, "
        f"{discovery_url[:200]!r} (RFC 8414 §3.3)"
    )


def scopes_of(claims: dict[str, Any]) -> set[str]:
    scope = claims.get("scope", claims.get("scp", ""))
    return set(scope.split()) if isinstance(scope, str) else {str(s) for s in scope}


class JwtValidator:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        guard: EndpointGuard | None = None,
        timeout: float = 10.0,
        max_bytes: int = 1024 * 1024,
        leeway: int = 60,
        ttl_seconds: float = 3600,
        min_refresh_seconds: float = 10,
    ) -> None:
        self._http = http
        self._guard = guard
        self._limits = Limits(timeout, max_bytes)
        self._leeway = leeway
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            doc = await get_json(self._http, url, self._limits)
        except FetchFailed as exc:
            raise IssuerUnavailable(str(exc)) from None
        if not isinstance(doc, dict):
            raise IssuerUnavailable(f"{url} did not answer a JSON object")
        return doc

    def _fresh(self, cache: dict[str, tuple[float, Any]], url: str, usable: Any = None) -> Any:
        cached = cache.get(url)
        if cached is None:
            return None
        age = time.monotonic() - cached[0]
        if age < self._ttl and (usable is None or usable(cached[1]) or age < self._min_refresh):
            return cached[1]
        return None

    async def metadata(self, discovery_url: str) -> dict[str, Any]:
        if (doc := self._fresh(self._metadata, discovery_url)) is not None:
            return doc  # type: ignore[no-any-return]
        async with self._locks.setdefault(discovery_url, asyncio.Lock()):  # one fetch per URL at a time
            if (doc := self._fresh(self._metadata, discovery_url)) is not None:
                return doc  # type: ignore[no-any-return]
            doc = await self._get_json(discovery_url)
            if not isinstance(doc.get("issuer"), str) or not isinstance(doc.get("jwks_uri"), str):
                raise IssuerUnavailable(f"{discovery_url} is not an OpenID/OAuth metadata document")
            if (mismatch := issuer_mismatch(discovery_url, doc["issuer"])) is not None:
                raise IssuerUnavailable(mismatch)
            try:  # the keys decide who the users are: not over a network anyone could tamper with
                if self._guard is not None:
                    self._guard.check_https(doc["jwks_uri"], "the issuer's jwks_uri")
            except EndpointDenied as exc:
                raise IssuerUnavailable(str(exc)) from None
            self._metadata[discovery_url] = (time.monotonic(), doc)
            return doc

    async def _keyset(self, jwks_uri: str, kid: str | None) -> KeySet:
        def knows(keys: KeySet) -> bool:
            return kid is None or any(k.kid == kid for k in keys.keys)

        if (keys := self._fresh(self._keys, jwks_uri, knows)) is not None:
            return keys  # type: ignore[no-any-return]
        async with self._locks.setdefault(jwks_uri, asyncio.Lock()):  # one fetch per URL at a time
            if (keys := self._fresh(self._keys, jwks_uri, knows)) is not None:
                return keys  # type: ignore[no-any-return]
            try:
                keys = KeySet.import_key_set(await self._get_json(jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError):
                raise IssuerUnavailable(f"{jwks_uri} is not a valid JWKS") from None
            self._keys[jwks_uri] = (time.monotonic(), keys)
            return keys

    async def validate(
        self,
        token: str,
        *,
        discovery_url: str,
        audiences: Sequence[str] = (),
        clients: Sequence[str] = (),
        scopes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The claims of a token signed by the issuer, unexpired, for one of ``audiences`` and ``clients``,
        carrying every one of ``scopes`` (an empty list means no rule)."""
        meta = await self.metadata(discovery_url)
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError):
            raise InvalidToken("the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("the token's signing algorithm is not accepted")
        keys = await self._keyset(meta["jwks_uri"], header.get("kid"))
        try:
            claims = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError):
            raise InvalidToken("the token's signature does not verify") from None
        now = time.time()
        if claims.get("iss") != meta["issuer"]:
            raise InvalidToken("the token is from another issuer")
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or exp + self._leeway < now:
            raise InvalidToken("the token has expired")
        if isinstance(nbf, (int, float)) and nbf - self._leeway > now:
            raise InvalidToken("the token is not valid yet")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("the token has no subject")
        aud = claims.get("aud")
        token_aud = {aud} if isinstance(aud, str) else set(aud or [])
        if audiences and not token_aud & set(audiences):
            raise InvalidToken("the token is not for this audience")
        if clients and claims.get("client_id", claims.get("azp")) not in clients:
            raise InvalidToken("the token was issued to a client that is not allowed")
        if scopes and not set(scopes) <= scopes_of(claims):
            raise InvalidToken("the token lacks a required scope")
        return claims
