"""Key rings: a new key seals and signs; older keys still open and verify until they are removed."""

from __future__ import annotations

import base64
import os

import pytest

from gatehouse_identity.crypto import KeyConfigError, TokenSigner, Vault
from gatehouse_identity.errors import VaultUnreadable

K1, K2 = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def test_vault_rotation_keeps_old_records_readable() -> None:
    old = Vault(f"k1:{K1}")
    record = old.seal("refresh-token", "vault:key:refresh")
    rotated = Vault(f"k1:{K1},k2:{K2}")
    assert rotated.open(record, "vault:key:refresh") == "refresh-token"
    assert not rotated.is_current(record)
    resealed = rotated.seal(rotated.open(record, "vault:key:refresh"), "vault:key:refresh")
    assert (
        resealed["kid"] == "k2" and Vault(f"k2:{K2}").open(resealed, "vault:key:refresh") == "refresh-token"
    )
    with pytest.raises(VaultUnreadable, match="'k1'"):
        rotated.open(record, "vault:other:refresh")  # bound to its place
    with pytest.raises(VaultUnreadable, match="vault key 'k1', which IDENTITY_VAULT_KEYS no longer") as gone:
        Vault(f"k2:{K2}").open(record, "vault:key:refresh")  # k1 removed: unreadable, not garbage
    assert K1 not in gone.value.message and K2 not in gone.value.message


def test_signing_key_rotation_keeps_issued_tokens_valid() -> None:
    old = TokenSigner("s1:" + "a" * 32, ttl_seconds=60)
    token = old.issue("gw-1", "jwt:iss#u1")
    rotated = TokenSigner("s1:" + "a" * 32 + ",s2:" + "b" * 32, ttl_seconds=60)
    assert rotated.verify(token) == ("gw-1", "jwt:iss#u1")  # issued before the rotation
    fresh = rotated.issue("gw-1", None)
    assert TokenSigner("s2:" + "b" * 32, ttl_seconds=60).verify(fresh) == (
        "gw-1",
        None,
    )  # signed by the new key
    with pytest.raises(ValueError):
        TokenSigner("s2:" + "b" * 32, ttl_seconds=60).verify(token)  # once s1 is gone
    with pytest.raises(KeyConfigError):
        TokenSigner("s1:short", ttl_seconds=60)
