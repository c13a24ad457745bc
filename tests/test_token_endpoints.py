"""Identity's token endpoints over HTTP need credentials: the admin's, or the workload's own client
credentials for itself. A workload access token seen once cannot be replayed from outside."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import harness
import httpx
import pymongo
import pytest
from admin import offline_provider_body

RETURN_URL = "http://127.0.0.1:1/token-endpoints/back"


def basic(name: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


@pytest.fixture
async def identity(stack: harness.Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.identity_url, trust_env=False, timeout=30) as http:
        yield http


async def _workload(identity: httpx.AsyncClient, admin: dict[str, str]) -> tuple[str, str]:
    name = f"agent-{secrets.token_hex(4)}"
    body = {"name": name, "allowedResourceOauth2ReturnUrls": [RETURN_URL]}
    made = await identity.post("/identities/CreateWorkloadIdentity", json=body, headers=admin)
    assert made.status_code == 201, made.text
    secret = made.json()["clientSecret"]
    assert secret and len(secret) >= 40
    return name, secret


async def test_token_endpoints_need_the_workloads_own_credentials(
    stack: harness.Stack, identity: httpx.AsyncClient
) -> None:
    admin = stack.admin_headers
    (a, a_secret), (b, b_secret) = [await _workload(identity, admin) for _ in range(2)]
    shown = (await identity.post("/identities/GetWorkloadIdentity", json={"name": a}, headers=admin)).json()
    assert shown["clientSecret"] is None and a_secret not in str(shown)  # shown once, kept hashed

    # workload access tokens: for itself only, and only with its own secret
    own = {"workloadName": a}
    path = "/identities/GetWorkloadAccessToken"
    for headers, status in (
        ({}, 401),
        (basic(a, "wrong"), 401),
        (basic(a, b_secret), 401),
        (basic("no-such-workload", a_secret), 401),
        ({"Authorization": "Basic !!!"}, 401),
        ({"Authorization": f"Bearer {a_secret}"}, 401),
        (basic(b, b_secret), 403),
    ):
        r = await identity.post(path, json=own, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert "workloadAccessToken" not in r.text
    assert (await identity.post(path, json=own, headers=basic(a, a_secret))).status_code == 200
    assert (await identity.post(path, json=own, headers=admin)).status_code == 200

    # a resource token request with A's workload access token (as a proxy log might show it)
    wat = (
        await identity.post(
            "/identities/GetWorkloadAccessTokenForUserId",
            json={"workloadName": a, "userId": "u1"},
            headers=admin,
        )
    ).json()["workloadAccessToken"]
    provider = f"prov-{secrets.token_hex(4)}"
    made = await identity.post(
        "/identities/CreateOauth2CredentialProvider", json=offline_provider_body(provider), headers=admin
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = {
        "workloadIdentityToken": wat,
        "resourceCredentialProviderName": provider,
        "scopes": ["read"],
        "oauth2Flow": "USER_FEDERATION",
    }
    mongo: Any = pymongo.MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
    sessions = mongo[stack.identity_db].authorization_sessions
    try:
        for headers, status in (({}, 401), (basic(b, b_secret), 403), (basic(a, "wrong"), 401)):
            r = await identity.post("/identities/oauth2/token", json=body, headers=headers)
            assert r.status_code == status, (headers, r.text)
        assert sessions.count_documents({"workload": a}) == 0  # the replays changed nothing
        r = await identity.post("/identities/oauth2/token", json=body, headers=basic(a, a_secret))
        assert r.status_code == 200, r.text
        assert r.json()["sessionStatus"] == "IN_PROGRESS"
        assert sessions.count_documents({"workload": a}) == 1

        # a rotated secret replaces the old one at once
        rotated = await identity.post(
            "/identities/RotateWorkloadIdentitySecret", json={"name": a}, headers=admin
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["clientSecret"]
        assert new_secret != a_secret
        assert (await identity.post(path, json=own, headers=basic(a, a_secret))).status_code == 401
        assert (await identity.post(path, json=own, headers=basic(a, new_secret))).status_code == 200
    finally:
        mongo.close()
        await identity.post(
            "/identities/DeleteOauth2CredentialProvider", json={"name": provider}, headers=admin
        )
        for name in (a, b):
            await identity.post("/identities/DeleteWorkloadIdentity", json={"name": name}, headers=admin)
