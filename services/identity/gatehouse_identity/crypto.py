"""Secrets at rest and identity's own tokens.

``Vault`` encrypts with AES-GCM under the newest key of a key ring; each record keeps the key id
it was sealed with, so older records stay readable after a new key is added (rotation). The
associated data binds a record to its place (a provider's secret cannot be replayed as a token).

``TokenSigner`` signs and verifies workload access tokens (HS256 JWTs, key id in the header).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from gatehouse_contracts.config import SettingsError

from .errors import VaultUnreadable

ISSUER = "gatehouse-identity"


class KeyConfigError(SettingsError, ValueError):
    """A key setting is malformed; the message names the setting, never a key."""


def _pairs(setting: str, value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in value.split(","):
        kid, sep, secret = item.strip().partition(":")
        if not sep or not kid or not secret:
            raise KeyConfigError(f"{setting} must be a comma-separated list of <key id>:<key>")
        pairs.append((kid, secret))
    return pairs


class Vault:
    def __init__(self, setting_value: str) -> None:
        self._keys: dict[str, AESGCM] = {}
        for kid, encoded in _pairs("IDENTITY_VAULT_KEYS", setting_value):
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error):
                raise KeyConfigError("IDENTITY_VAULT_KEYS: each key must be base64 of 32 bytes") from None
            if len(raw) != 32:
                raise KeyConfigError("IDENTITY_VAULT_KEYS: each key must be base64 of 32 bytes")
            self._keys[kid] = AESGCM(raw)
        self.active = kid

    def seal(self, plaintext: str, aad: str) -> dict[str, Any]:
        nonce = os.urandom(12)
        sealed = self._keys[self.active].encrypt(nonce, plaintext.encode(), aad.encode())
        return {"kid": self.active, "nonce": nonce, "data": sealed}

    def open(self, record: dict[str, Any], aad: str) -> str:
        """The plaintext; ``VaultUnreadable`` (naming the key id, never a key) if it cannot be had."""
        kid = record.get("kid", "")
        key = self._keys.get(kid)
        if key is None:
            raise VaultUnreadable(
                f"a stored secret is sealed with vault key {kid!r}, which IDENTITY_VAULT_KEYS no longer "
                "holds: add that key back (and run `gatehouse-identity rotate-vault` before removing it)"
            )
        try:
            return key.decrypt(bytes(record["nonce"]), bytes(record["data"]), aad.encode()).decode()
        except InvalidTag:
            raise VaultUnreadable(
                f"a stored secret does not decrypt with vault key {kid!r} (that key id now holds "
                "another key, or the record was altered)"
            ) from None

    def is_current(self, record: dict[str, Any]) -> bool:
        return record.get("kid") == self.active


class TokenSigner:
    def __init__(self, setting_value: str, ttl_seconds: float) -> None:
        pairs = _pairs("IDENTITY_TOKEN_KEYS", setting_value)
        if any(len(secret) < 32 for _, secret in pairs):
            raise KeyConfigError("IDENTITY_TOKEN_KEYS: each secret must be at least 32 characters")
        self._keys = {kid: OctKey.import_key(secret.encode()) for kid, secret in pairs}
        self._active = list(self._keys)[-1]
        self._ttl = ttl_seconds

    def issue(self, workload: str, user: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": workload,
            "iat": now,
            "exp": now + int(self._ttl),
            "jti": secrets.token_hex(8),
        }
        if user is not None:
            claims["usr"] = user
        return jwt.encode({"alg": "HS256", "kid": self._active}, claims, self._keys[self._active])

    def verify(self, token: str) -> tuple[str, str | None]:
        """(workload, user or None) of a genuine, unexpired token; ``ValueError`` otherwise."""
        try:
            header = jwt.decode(token, lambda obj: self._keys[obj.headers()["kid"]], algorithms=["HS256"])
        except (JoseError, KeyError, ValueError, TypeError):
            raise ValueError("the workload access token is not valid") from None
        claims = header.claims
        if (
            claims.get("iss") != ISSUER
            or claims.get("aud") != ISSUER
            or not isinstance(claims.get("sub"), str)
        ):
            raise ValueError("the workload access token is not valid")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise ValueError("the workload access token has expired")
        user = claims.get("usr")
        return claims["sub"], user if isinstance(user, str) else None
