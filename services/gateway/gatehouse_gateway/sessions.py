"""MCP session ids any gateway replica can verify without shared state: HMAC-signed claims.

``Mcp-Session-Id: <base64url(claims)>.<base64url(HMAC-SHA256(secret, claims))>``. The claims name the
gateway, the negotiated protocol version, the user (once the gateway has an authorizer), when the
session began and a random nonce. Ended sessions (DELETE) are remembered by nonce until they would
have expired anyway, at most ``max_per_user`` of them per gateway and user.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Container

import msgspec

from .errors import McpHttpError


class SessionClaims(msgspec.Struct, frozen=True, array_like=True):
    gateway_id: str
    protocol_version: str
    issued_at: int
    nonce: str
    user: str = ""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, payload: str) -> str:
    return b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def issue(
    secret: bytes, gateway_id: str, protocol_version: str, user: str = "", now: float | None = None
) -> str:
    claims = SessionClaims(gateway_id, protocol_version, int(now or time.time()), secrets.token_hex(12), user)
    payload = b64(msgspec.json.encode(claims))
    return f"{payload}.{sign(secret, payload)}"


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
    if not payload or not signature or len(token) > 1024 or not token.isascii():
        return None  # (a header's bytes 0x80-0xFF arrive as non-ASCII text: compare_digest refuses it)
    if not hmac.compare_digest(signature, sign(secret, payload)):
        return None
    try:
        claims = msgspec.json.decode(unb64(payload), type=SessionClaims)
    except (msgspec.DecodeError, binascii.Error, ValueError):
        return None
    return claims


def bind(claims: SessionClaims | None, gateway_id: str, user: str, ended: Container[str]) -> SessionClaims:
    """The session a request may use: genuine and unexpired (``claims`` is ``verify``'s answer), of
    this gateway, not ended, and the caller's own (``user`` is ``""`` for anonymous callers).
    McpHttpError otherwise: 404 tells the client to initialize anew, 403 that it is not theirs."""
    if claims is None or claims.gateway_id != gateway_id or claims.nonce in ended:
        raise McpHttpError(404, "Not Found: the session has ended or is not valid; initialize a new one")
    if claims.user != user:
        raise McpHttpError(403, "Forbidden: this session belongs to another user")
    return claims


Owner = tuple[str, str]  # (gateway id, user key)


class EndedSessions:
    """Nonces of sessions ended by DELETE on any replica, kept until they would have expired.

    They leave in the order they were ended (a FIFO, amortised O(1) per DELETE, no rescan): each
    expires at most ``max_age`` after it was ended, so an entry waits behind an older one no longer
    than that. A gateway user (all anonymous callers of a gateway count as one) may have at most
    ``max_per_user`` remembered: ``full`` says when the endpoint refuses their next DELETE (429;
    the session then stays valid until it expires, as if never ended).
    """

    def __init__(self, max_age: float, max_per_user: int = 1000) -> None:
        self._max_age = max_age
        self._max_per_user = max_per_user
        self._ended: dict[str, float] = {}
        self._order: deque[tuple[float, str, Owner | None]] = deque()
        self._per_owner: dict[Owner, int] = {}

    def full(self, claims: SessionClaims) -> bool:
        """Whether the session's user has as many ended sessions remembered as allowed."""
        self._expire()
        return self._per_owner.get((claims.gateway_id, claims.user), 0) >= self._max_per_user

    def end(self, claims: SessionClaims) -> float:
        """Remember an ended session; returns when it would have expired anyway."""
        expires_at = claims.issued_at + self._max_age
        if claims.nonce not in self._ended:
            owner = (claims.gateway_id, claims.user)
            self._ended[claims.nonce] = expires_at
            self._order.append((expires_at, claims.nonce, owner))
            self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        self._expire()
        return expires_at

    def load(self, ended: dict[str, float]) -> None:
        """Add sessions ended before this replica started or while it was cut off (nonce -> expiry)."""
        now = time.time()
        for nonce, expires_at in ended.items():
            if expires_at > now and nonce not in self._ended:
                self._ended[nonce] = expires_at
                self._order.append((expires_at, nonce, None))

    def _expire(self) -> None:
        now = time.time()
        while self._order and self._order[0][0] <= now:
            _, nonce, owner = self._order.popleft()
            del self._ended[nonce]
            if owner is not None:
                if (left := self._per_owner[owner] - 1) == 0:
                    del self._per_owner[owner]
                else:
                    self._per_owner[owner] = left

    def __contains__(self, nonce: object) -> bool:
        return nonce in self._ended

    def __len__(self) -> int:
        return len(self._ended)
