"""A vault key removed too early (IDENTITY_VAULT_KEYS no longer holds the key id a record was sealed
with): token reads fail with a clear error naming the key id (never a key), and a consent whose code
can no longer be read ends FAILED instead of staying COMPLETING for good."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from typing import Any

import harness
import httpx
import pymongo
from admin import offline_provider_body
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatehouse_identity.tokens import vault_key

OLD_KID = harness.VAULT_KEYS.split(":", 1)[0]


def seal(plaintext: str, aad: str) -> dict[str, Any]:
    """A record as identity seals it under the test suite's (old) vault key."""
    nonce = os.urandom(12)
    data = AESGCM(base64.b64decode(harness.VAULT_KEY)).encrypt(nonce, plaintext.encode(), aad.encode())
    return {"kid": OLD_KID, "nonce": nonce, "data": data}


async def test_a_missing_vault_key_is_a_clear_error_and_ends_the_session(stack: harness.Stack) -> None:
    db_name, port = f"{stack.identity_db}_vaultgone", harness.free_port()
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    admin = stack.admin_headers
    workload, user, scopes = f"wl-{secrets.token_hex(4)}", "u1", ["read"]

    def identity(vault_keys: str) -> harness.Proc:
        env = {**stack.env, "IDENTITY_DB": db_name, "IDENTITY_VAULT_KEYS": vault_keys}
        return harness.start_service("identity", env, port=port, label="identity-vault-keys")

    mongo: Any = pymongo.MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
    db = mongo[db_name]
    proc = identity(harness.VAULT_KEYS)
    try:
        async with httpx.AsyncClient(base_url=proc.url or "", headers=admin, timeout=30) as http:
            body = {"name": workload, "allowedResourceOauth2ReturnUrls": ["http://127.0.0.1:1/back"]}
            assert (await http.post("/identities/CreateWorkloadIdentity", json=body)).status_code == 201
            provider = f"prov-{secrets.token_hex(4)}"
            made = await http.post(
                "/identities/CreateOauth2CredentialProvider", json=offline_provider_body(provider)
            )
            assert made.status_code == 201, made.text
            provider_id = made.json()["callbackUrl"].rsplit("/", 1)[-1]
            # a stored token for (workload, user), and a consent whose code has come back: both sealed
            key = vault_key(workload, f"id:{user}", provider_id, scopes, [])
            now = time.time()
            owner = {  # whose token and session: the same in both documents
                "workload": workload,
                "user": f"id:{user}",
                "providerId": provider_id,
                "providerName": provider,
                "scopes": scopes,
                "resources": [],
            }
            db.token_vault.insert_one(
                {
                    "_id": key,
                    **owner,
                    "access": seal("stored-access-token", f"vault:{key}:access"),
                    "refresh": None,
                    "expiresAt": now + 3600,
                    "renewAt": None,
                    "updatedAt": now,
                }
            )
            uri, state, handle = (
                f"urn:ietf:params:oauth:request_uri:{secrets.token_urlsafe(16)}",
                secrets.token_urlsafe(16),
                secrets.token_urlsafe(32),
            )
            db.authorization_sessions.insert_one(
                {
                    "_id": uri,
                    "state": state,
                    "status": "CODE_RECEIVED",
                    **owner,
                    "customParameters": {},
                    "returnUrl": "http://127.0.0.1:1/back",
                    "verifier": seal("v" * 43, f"session:{uri}:verifier"),
                    "code": seal("the-code", f"state:{state}:code"),
                    "handle": hashlib.sha256(handle.encode()).hexdigest(),  # what the return URL got
                    "vaultKey": key,
                    "createdAt": now,
                    "expiresAt": now + 600,
                }
            )
            wat = (
                await http.post(
                    "/identities/GetWorkloadAccessTokenForUserId",
                    json={"workloadName": workload, "userId": user},
                )
            ).json()["workloadAccessToken"]
            request = {
                "workloadIdentityToken": wat,
                "resourceCredentialProviderName": provider,
                "scopes": scopes,
            }
            read = await http.post("/identities/oauth2/token", json=request)
            assert read.status_code == 200 and read.json()["accessToken"] == "stored-access-token", read.text
        proc.stop()

        proc = identity(f"test2:{new_key}")  # the old key removed before `rotate-vault` ran
        async with httpx.AsyncClient(base_url=proc.url or "", headers=admin, timeout=30) as http:
            completing = {"userIdentifier": {"userId": user}, "sessionUri": handle}
            for path, body in (
                ("/identities/oauth2/token", request),  # a stored user token
                ("/identities/oauth2/token", {**request, "oauth2Flow": "M2M"}),  # the provider's secret
                ("/identities/CompleteResourceTokenAuth", completing),  # the consent's code
            ):
                r = await http.post(path, json=body)
                assert r.status_code == 500, (path, r.text)
                error = r.json()["error"]
                assert error["code"] == "VaultKeyUnavailable", error
                assert (
                    f"vault key {OLD_KID!r}" in error["message"] and "IDENTITY_VAULT_KEYS" in error["message"]
                )
                assert harness.VAULT_KEY not in r.text and new_key not in r.text
            session = db.authorization_sessions.find_one({"_id": uri})
            assert session["status"] == "FAILED" and session["code"] is None and session["verifier"] is None
            polled = await http.post("/identities/oauth2/token", json={**request, "sessionUri": uri})
            assert polled.status_code == 200 and polled.json()["sessionStatus"] == "FAILED", polled.text
        log = proc.log_text()
        assert f"vault key {OLD_KID!r}" in log and harness.VAULT_KEY not in log and new_key not in log
    finally:
        proc.stop()
        mongo.drop_database(db_name)
        mongo.close()
