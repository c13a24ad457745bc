"""``gatehouse-identity rotate-vault``: seal every secret at rest again under the newest vault key.

Run it after adding a key at the end of ``IDENTITY_VAULT_KEYS``; once it reports zero records left
on older keys, those keys can be removed. Safe to run while identity serves (each record is
rewritten only if it still holds what was read).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from gatehouse_contracts.mongo import connect

from .consenting_user import login_verifier_aad
from .crypto import Vault
from .errors import VaultUnreadable
from .session_binding import code_aad
from .settings import Settings
from .workloads import login_secret_aad

# collection -> the fields (dotted paths) holding sealed records
SEALED_FIELDS = {
    "credential_providers": ["clientSecret"],
    "token_vault": ["access", "refresh"],
    "authorization_sessions": ["verifier", "code", "loginVerifier"],
    "workload_identities": ["jwtAuthorizer.loginClient.clientSecret"],
}


def _aad(collection: str, doc: dict[str, Any], field: str) -> str:
    """The associated data each record was sealed with (see providers, vault_tokens, tokens,
    session_binding, consenting_user, workloads)."""
    if collection == "credential_providers":
        return f"provider:{doc['_id']}:client_secret"
    if collection == "token_vault":
        return f"vault:{doc['_id']}:{field}"
    if collection == "workload_identities":
        return login_secret_aad(doc["_id"])
    if field == "code":
        return code_aad(doc["state"])
    if field == "loginVerifier":
        return login_verifier_aad(doc["_id"])
    return f"session:{doc['_id']}:verifier"


def _at(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


async def rotate(settings: Settings) -> dict[str, int]:
    """Re-seal records not under the active key; returns how many were rewritten per collection."""
    vault = Vault(settings.identity_vault_keys)
    mongo = connect(settings.mongodb_url)
    counts: dict[str, int] = {}
    try:
        db = mongo[settings.identity_db]
        for collection, fields in SEALED_FIELDS.items():
            counts[collection] = 0
            async for doc in db[collection].find({}):
                changes = {}
                for field in fields:
                    record = _at(doc, field)
                    if record and not vault.is_current(record):
                        aad = _aad(collection, doc, field)
                        changes[field] = vault.seal(vault.open(record, aad), aad)
                if changes:
                    match = {"_id": doc["_id"], **{f: _at(doc, f) for f in changes}}
                    result = await db[collection].update_one(match, {"$set": changes})
                    counts[collection] += result.modified_count
    finally:
        await mongo.close()
    return counts


def main(settings: Settings) -> None:
    try:
        counts = asyncio.run(rotate(settings))
    except VaultUnreadable as exc:
        sys.exit(f"gatehouse-identity rotate-vault: {exc.message}")
    for collection, n in counts.items():
        print(f"{collection}: {n} records sealed again under the newest key")
