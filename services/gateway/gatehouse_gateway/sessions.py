"""MCP session ids any gateway replica can verify without shared state: HMAC-signed claims.

``Mcp-Session-Id: <base64url(claims)>.<base64url(HMAC-SHA256(secret, claims))>``. The claims name the
gateway, the negotiated protocol version, the user (once the gateway has an authorizer), when the
session began and a random nonce. Ended sessions (DELETE) are remembered by nonce until they would
have expired anyway.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time

import msgspec


class SessionClaims(msgspec.Struct, frozen=True, array_like=True):
    gateway_id: str
    protocol_version: str
    issued_at: int
    nonce: str
    user: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def issue(
    secret: bytes, gateway_id: str, protocol_version: str, user: str = "", now: float | None = None
) -> str:
    claims = SessionClaims(gateway_id, protocol_version, int(now or time.time()), secrets.token_hex(12), user)
    payload = _b64(msgspec.json.encode(claims))
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, token: str, max_age: float, now: float | None = None) -> SessionClaims | None:
    """The claims of a genuine, unexpired session id, else None."""
    claims = _genuine(secret, token)
    if claims is None or (now or time.time()) - claims.issued_at > max_age:
        return None
    return claims


@functools.lru_cache(maxsize=8192)
def _genuine(secret: bytes, token: str) -> SessionClaims | None:
    """Signature and shape, checked once per session id rather than on every request."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 1024:
        return None
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        return None
    try:
        claims = msgspec.json.decode(_unb64(payload), type=SessionClaims)
    except (msgspec.DecodeError, binascii.Error, ValueError):
        return None
    return claims


class EndedSessions:
    """Nonces of sessions ended by DELETE on any replica, kept until they would have expired."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._ended: dict[str, float] = {}

    def end(self, nonce: str, issued_at: float) -> float:
        """Remember an ended session; returns when it would have expired anyway."""
        self._ended[nonce] = expires_at = issued_at + self._max_age
        now = time.time()
        if len(self._ended) > 1000:
            self._ended = {n: exp for n, exp in self._ended.items() if exp > now}
        return expires_at

    def load(self, ended: dict[str, float]) -> None:
        """Add sessions ended before this replica started or while it was cut off (nonce -> expiry)."""
        now = time.time()
        self._ended.update((n, exp) for n, exp in ended.items() if exp > now)

    def __contains__(self, nonce: str) -> bool:
        return nonce in self._ended
