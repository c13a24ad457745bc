"""Authorization-code targets end to end: inbound JWTs, implicit sync with an admin's consent, URL
elicitation (-32042, the 2025-11-25 era: these clients say mode="legacy"; test_modern_era.py has
2026-07-28's multi-round-trip consent) on tools/call, a user's consent in a real browser, completion, retry.

oidc-provider is both the users' IdP (their JWTs for the gateway) and the upstream authorization
server; the upstream is an `mcp` SDK server that validates that server's JWTs and answers `whoami`
with the token's subject.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import ANY
from urllib.parse import parse_qs, urlencode, urlsplit

import browser
import harness
import httpx
import pytest
from admin import Admin, oidc_credential_provider
from harness import mcp_client
from mcp import MCPError, UrlElicitationRequiredError
from rawmcp import initialize, post

pytestmark = pytest.mark.skipif(
    not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
)


@dataclass
class World:
    stack: Any
    oidc: Any
    upstream: Any
    catcher: harness.ReturnCatcher
    provider: str
    gateway: dict[str, Any]
    audience: str
    provider_client: str = ""

    def user_jwt(self, user: str) -> str:
        return harness.user_tokens(self.oidc, user, resource=self.audience)["access_token"]  # type: ignore[no-any-return]

    def target_body(
        self, name: str, *, inline: bool = False, return_url: str | None = None
    ) -> dict[str, Any]:
        server: dict[str, Any] = {"endpoint": self.upstream.url}
        if inline:
            tools = [{"name": "whoami", "description": "who", "inputSchema": {"type": "object"}}]
            server["mcpToolSchema"] = {"inlinePayload": json.dumps({"tools": tools})}
        oauth = {
            "providerName": self.provider,
            "scopes": ["mcp:tools"],
            "grantType": "AUTHORIZATION_CODE",
            "defaultReturnUrl": return_url or self.catcher.callback_url,
        }
        return {
            "name": name,
            "targetConfiguration": {"mcp": {"mcpServer": server}},
            "credentialProviderConfigurations": [
                {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
            ],
        }


@pytest.fixture(scope="module")
async def world(stack: Any, oidc_provider: Any) -> AsyncIterator[World]:
    catcher = harness.start_return_catcher()
    upstream = harness.start_sdk_server(jwt_issuer=oidc_provider.url)
    provider = await oidc_credential_provider(stack, oidc_provider)
    client_id = provider["clientId"]
    audience = f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_jwt_gateway(oidc_provider.url, audience)
    yield World(stack, oidc_provider, upstream, catcher, provider["name"], gateway, audience, client_id)
    catcher.stop()
    upstream.stop()


async def _consent(url: str, user: str, oidc: Any) -> str:
    """Log in and consent as ``user`` in Chromium; the session id the return URL received."""
    landed = await browser.consent(url, user, oidc.users[user])
    query = parse_qs(urlsplit(landed).query)
    assert "session_id" in query, landed
    harness.remember_secret(query["session_id"][0])
    return query["session_id"][0]


async def _complete(
    w: World, session_uri: str, *, user_id: str | None = None, user_token: str | None = None
) -> httpx.Response:
    who = {"userId": user_id} if user_id else {"userToken": user_token}
    headers = w.stack.admin_headers if user_id else {}
    async with httpx.AsyncClient(base_url=w.stack.identity_url, headers=headers) as identity:
        return await identity.post(
            "/identities/CompleteResourceTokenAuth", json={"userIdentifier": who, "sessionUri": session_uri}
        )


async def _admin_consents(w: World, admin: Admin, target_id: str, pending: str) -> dict[str, Any]:
    gid = w.gateway["gatewayId"]
    waiting = await admin.wait_status(gid, target_id)
    assert waiting["status"] == pending, waiting
    assert waiting["authorizationStatus"] == "NEEDS_AUTHORIZATION"
    oauth2 = waiting["authorizationData"]["oauth2"]
    assert oauth2["userId"].startswith(f"{gid}{target_id}")
    session_uri = await _consent(oauth2["authorizationUrl"], "admin", w.oidc)
    assert (await _complete(w, session_uri, user_id=oauth2["userId"])).status_code == 200
    ready = await admin.wait_status(
        gid, target_id, statuses={"READY", "FAILED", "UPDATE_UNSUCCESSFUL", "SYNCHRONIZE_UNSUCCESSFUL"}
    )
    assert ready["status"] == "READY" and ready["authorizationStatus"] == "AUTHORIZED", ready
    assert "authorizationData" not in ready
    await _outbox_cleared(w, target_id)
    return waiting


async def _outbox_cleared(w: World, target_id: str) -> None:
    """Until the sync-worker has also cleared the outbox of its READY write. FerretDB runs that
    update as a read then a write, so an admin change landing in between would be lost (README:
    FerretDB is for development); the next step of a test must not race it."""
    from pymongo import AsyncMongoClient

    mongo: Any = AsyncMongoClient(w.stack.mongo_url)
    try:
        for _ in range(300):
            doc = await mongo[w.stack.gatehouse_db]["targets"].find_one({"_id": target_id}, {"outboxId": 1})
            if doc is None or "outboxId" not in doc:
                return
            await asyncio.sleep(0.05)
    finally:
        await mongo.close()
    raise AssertionError(f"target {target_id} kept its outbox")


def _elicitation(exc: MCPError) -> Any:
    assert exc.error.code == -32042, exc.error
    return UrlElicitationRequiredError.from_error(exc.error).elicitations[0]


async def _call_until_consented(w: World, tool: str, user: str) -> Any:
    """tools/call as ``user``: -32042, consent in the browser, completion with the user's JWT, retry."""
    jwt = w.user_jwt(user)
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {jwt}"}
    ) as client:
        with pytest.raises(MCPError) as first:
            await client.call_tool(tool, {})
        elicitation = _elicitation(first.value)
        assert elicitation.mode == "url" and elicitation.elicitation_id
        session_uri = await _consent(elicitation.url, user, w.oidc)
        assert (await _complete(w, session_uri, user_token=jwt)).status_code == 200
        return await client.call_tool(tool, {})


async def test_inbound_jwt_is_required_and_checked(world: World) -> None:
    w = world
    url = w.gateway["gatewayUrl"]
    async with httpx.AsyncClient() as http:
        init = initialize()
        missing = await post(http, url, init)
        assert missing.status_code == 401
        challenge = missing.headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="')[1].rstrip('"')
        metadata = (await http.get(metadata_url)).json()
        assert metadata["resource"] == url and metadata["authorization_servers"] == [w.oidc.url]
        expired = harness.mint_jwt(w.oidc, sub="U1", aud=w.audience, ttl=-300)
        wrong_aud = harness.mint_jwt(w.oidc, sub="U1", aud="https://elsewhere.example")
        for token in (expired, wrong_aud, "not-a-jwt"):
            r = await post(http, url, init, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
        u1 = {"Authorization": f"Bearer {w.user_jwt('U1')}"}
        ok = await post(http, url, init, headers=u1)
        assert ok.status_code == 200
        session = ok.headers["mcp-session-id"]
        u2 = {"Authorization": f"Bearer {w.user_jwt('U2')}"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert (await post(http, url, ping, session=session, headers=u1)).status_code == 200
        assert (await post(http, url, ping, session=session, headers=u2)).status_code == 403


async def test_implicit_sync_admin_consents_then_synchronize_asks_again(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("implicit"))
        assert created["status"] == "CREATING"
        first = await _admin_consents(w, admin, created["targetId"], "CREATE_PENDING_AUTH")
        target = await admin.target(gid, created["targetId"])
        assert target["toolCount"] >= 5
        r = await admin.http.put(
            f"/gateways/{gid}/synchronizeTargets", json={"targetIdList": [created["targetId"]]}
        )
        assert r.status_code == 202
        second = await _admin_consents(w, admin, created["targetId"], "SYNCHRONIZE_PENDING_AUTH")
        # a synchronize never reuses the earlier consent
        assert (
            second["authorizationData"]["oauth2"]["userId"] != first["authorizationData"]["oauth2"]["userId"]
        )
        assert (
            second["authorizationData"]["oauth2"]["authorizationUrl"]
            != first["authorizationData"]["oauth2"]["authorizationUrl"]
        )


async def test_pending_target_refuses_changes_with_409(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("waiting"))
        pending = await admin.wait_status(gid, created["targetId"])
        assert pending["status"] == "CREATE_PENDING_AUTH"
        tid = created["targetId"]
        assert (
            await admin.http.put(f"/gateways/{gid}/targets/{tid}", json=w.target_body("waiting"))
        ).status_code == 409
        assert (await admin.http.delete(f"/gateways/{gid}/targets/{tid}")).status_code == 409
        r = await admin.http.put(f"/gateways/{gid}/synchronizeTargets", json={"targetIdList": [tid]})
        assert r.status_code == 409


async def test_schema_upfront_and_switching_methods(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("upfront", inline=True))
        assert created["status"] == "READY" and created["authorizationStatus"] == "NO_AUTHORIZATION_REQUIRED"
        tid = created["targetId"]
        r = await admin.http.put(f"/gateways/{gid}/synchronizeTargets", json={"targetIdList": [tid]})
        assert r.status_code == 400
        # to Method 1 (implicit sync) ...
        r = await admin.http.put(f"/gateways/{gid}/targets/{tid}", json=w.target_body("upfront"))
        assert r.status_code == 202 and r.json()["status"] == "UPDATING"
        await _admin_consents(w, admin, tid, "UPDATE_PENDING_AUTH")
        assert (await admin.target(gid, tid))["toolCount"] >= 5
        # ... and back to Method 2
        r = await admin.http.put(f"/gateways/{gid}/targets/{tid}", json=w.target_body("upfront", inline=True))
        assert r.status_code == 202 and r.json()["status"] == "READY" and r.json()["toolCount"] == 1


async def test_users_consent_on_tools_call_and_get_their_own_tokens(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(gid, w.target_body("mine", inline=True))
    u1 = w.user_jwt("U1")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {u1}"}
    ) as client:
        names = [t.name for t in (await client.list_tools()).tools]  # never prompts
        assert "mine___whoami" in names
    result = await _call_until_consented(w, "mine___whoami", "U1")
    assert json.loads(result.content[0].text)["sub"] == "U1"
    result = await _call_until_consented(w, "mine___whoami", "U2")
    assert json.loads(result.content[0].text)["sub"] == "U2"
    # each keeps their own token: no prompt now, and still their own subject
    for user in ("U1", "U2"):
        async with mcp_client(
            w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {w.user_jwt(user)}"}
        ) as c:
            assert json.loads((await c.call_tool("mine___whoami", {})).content[0].text)["sub"] == user


async def _requires_consent(w: World, client: Any, tool: str, *, force: bool = False) -> Any:
    """The call answers -32042: its URL elicitation (``force``: even if the user holds a token)."""
    meta = {"gatehouse/oauth": {"forceAuthentication": True}} if force else None
    with pytest.raises(MCPError) as err:
        await client.call_tool(tool, {}, meta=meta)
    return _elicitation(err.value)


def _request_uri(url: str) -> str:
    return parse_qs(urlsplit(url).query)["request_uri"][0]


async def _identity_doc(w: World, collection: str, key: str) -> dict[str, Any]:
    """A document of identity's database as stored."""
    from pymongo import AsyncMongoClient

    mongo: Any = AsyncMongoClient(w.stack.mongo_url)
    try:
        return await mongo[w.stack.identity_db][collection].find_one({"_id": key})  # type: ignore[no-any-return]
    finally:
        await mongo.close()


async def _session(w: World, request_uri: str) -> dict[str, Any]:
    return await _identity_doc(w, "authorization_sessions", request_uri)


async def test_a_forwarded_consent_link_cannot_attach_another_account(world: World) -> None:
    """MCP elicitation "Phishing" / RFC 9700 §4.7: U3 sends U4 the link of U3's -32042 ("please
    approve this"); U4 consents with U4's account. Neither the link's request_uri nor U4's
    completion gives U3 U4's grant; U3's own consent still works afterwards."""
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(gid, w.target_body("shared", inline=True))
    u3 = w.user_jwt("U3")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {u3}"}
    ) as client:
        link = (await _requires_consent(w, client, "shared___whoami")).url
        request_uri = _request_uri(link)
        # U4 opens the forwarded link and consents as U4; U4's browser alone gets the handle
        handle = await _consent(link, "U4", w.oidc)
        assert handle != request_uri and request_uri not in handle
        # U3 tries to finish with the request_uri of the link (all U3 ever saw): refused
        attempt = await _complete(w, request_uri, user_token=u3)
        assert (
            attempt.status_code == 403 and attempt.json()["error"]["message"] == "Invalid or expired session"
        )
        assert (await _session(w, request_uri))["status"] == "CODE_RECEIVED"  # nothing changed
        # U4's app completes with U4's JWT (the person at the return URL): wrong user, the session ends
        assert (await _complete(w, handle, user_token=w.user_jwt("U4"))).status_code == 403
        # ... for good: not even U3 holding the handle can complete it now
        assert (await _complete(w, handle, user_token=u3)).status_code == 403
        ended = await _session(w, request_uri)
        assert (ended["status"], ended["failedBecause"], ended["code"]) == ("FAILED", "user_mismatch", None)
        # U3 got nothing: the next call asks again, with a new link
        again = (await _requires_consent(w, client, "shared___whoami")).url
        assert _request_uri(again) != request_uri
        # the legitimate flow in the same run: U3 consents and completes
        mine = await _consent(again, "U3", w.oidc)
        assert (await _complete(w, mine, user_token=u3)).status_code == 200
        result = await client.call_tool("shared___whoami", {})
        assert json.loads(result.content[0].text)["sub"] == "U3"


async def test_identity_verifies_who_consents_and_completes_itself(world: World) -> None:
    """A gateway with a login client at its users' issuer: identity logs the person in before the
    provider, refuses anyone but the user who asked (ending the session), and completes the
    session itself, so a plain MCP client needs no return-URL app."""
    w = world
    login_id, login_secret = f"login-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
    harness.remember_secret(login_secret)  # the last test looks for it in every log and event
    harness.register_oidc_client(
        w.oidc,
        login_id,
        client_secret=login_secret,
        redirect_uris=[f"{w.stack.identity_url}/identities/oauth2/login/callback"],
        grant_types=["authorization_code"],
        skip_consent=True,
    )
    jwt_authorizer = {
        **w.gateway["authorizerConfiguration"]["customJWTAuthorizer"],
        "loginClient": {"clientId": login_id, "clientSecret": login_secret},
    }
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        gateway = await admin.create_gateway(
            authorizerType="CUSTOM_JWT", authorizerConfiguration={"customJWTAuthorizer": jwt_authorizer}
        )
        stored = gateway["authorizerConfiguration"]["customJWTAuthorizer"]
        assert stored["loginClient"] == {"clientId": login_id}  # the secret went to identity, sealed
        body = w.target_body("verified", inline=True)
        del body["credentialProviderConfigurations"][0]["credentialProvider"]["oauthCredentialProvider"][
            "defaultReturnUrl"
        ]
        await admin.create_target(gateway["gatewayId"], body)  # no return URL: nobody needs an app
    u1 = w.user_jwt("U1")
    async with mcp_client(
        gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {u1}"}
    ) as client:
        link = (await _requires_consent(w, client, "verified___whoami")).url
        # the link is forwarded to U2, who signs in as U2: refused before the provider, session over
        landed = await browser.consent(link, "U2", w.oidc.users["U2"])
        assert urlsplit(landed).path == "/identities/oauth2/login/callback"
        ended = await _session(w, _request_uri(link))
        assert (ended["status"], ended["failedBecause"]) == ("FAILED", "user_mismatch")
        assert not ended["verified"] and ended.get("handle") is None  # U2 never got to the provider
        link = (await _requires_consent(w, client, "verified___whoami")).url  # U1 got nothing
        # U1 signs in (verified), stops before the provider and forwards the link: U2 must sign in again
        to_provider = f"{w.oidc.url}/auth?" + urlencode(
            {"response_type": "code", "client_id": w.provider_client}
        )
        stopped = await asyncio.to_thread(
            harness.login_http, link, "U1", w.oidc.users["U1"], stop_at=to_provider
        )
        assert stopped.startswith(to_provider) and (await _session(w, _request_uri(link)))["verified"] is True
        await browser.consent(link, "U2", w.oidc.users["U2"])
        ended = await _session(w, _request_uri(link))
        assert (ended["status"], ended["failedBecause"], ended["verified"]) == (
            "FAILED",
            "user_mismatch",
            False,
        )
        link = (await _requires_consent(w, client, "verified___whoami")).url
        # U1 opens it: signs in as U1, consents at the provider, identity completes by itself
        landed = await browser.consent(link, "U1", w.oidc.users["U1"])
        assert urlsplit(landed).path.startswith("/identities/oauth2/callback/")
        done = await _session(w, _request_uri(link))
        assert (done["status"], done["verified"]) == ("COMPLETED", True)
        result = await client.call_tool("verified___whoami", {})
        assert json.loads(result.content[0].text)["sub"] == "U1"
    async with httpx.AsyncClient(base_url=w.stack.identity_url, headers=w.stack.admin_headers) as identity:
        workload = (
            await identity.post("/identities/GetWorkloadIdentity", json={"name": gateway["gatewayId"]})
        ).json()
    assert workload["jwtAuthorizer"]["loginClient"] == {"clientId": login_id, "clientSecret": ""}
    assert login_secret not in json.dumps(workload)
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        without = {
            "name": gateway["name"],
            "authorizerType": "CUSTOM_JWT",
            "authorizerConfiguration": w.gateway["authorizerConfiguration"],
        }
        r = await admin.http.put(f"/gateways/{gateway['gatewayId']}", json=without)
        assert r.status_code == 400 and "loginClient is needed" in r.json()["error"]["message"]
        # an update that re-sends the client id without the secret keeps the sealed secret
        kept = {
            **without,
            "authorizerConfiguration": {
                "customJWTAuthorizer": {**jwt_authorizer, "loginClient": {"clientId": login_id}}
            },
        }
        sealed = await _identity_doc(w, "workload_identities", gateway["gatewayId"])
        assert (await admin.http.put(f"/gateways/{gateway['gatewayId']}", json=kept)).status_code == 202
        assert await _identity_doc(w, "workload_identities", gateway["gatewayId"]) == sealed | {
            "updatedAt": ANY
        }


async def test_overrides_force_and_upstream_401(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(gid, w.target_body("force", inline=True))
    result = await _call_until_consented(w, "force___whoami", "U4")
    assert json.loads(result.content[0].text)["sub"] == "U4"
    jwt = w.user_jwt("U4")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {jwt}"}
    ) as client:
        with pytest.raises(MCPError) as bad:
            await client.call_tool(
                "force___whoami", {}, meta={"gatehouse/oauth": {"returnUrl": "https://evil.example/"}}
            )
        assert bad.value.error.code == -32602 and "allow-list" in bad.value.error.message
        with pytest.raises(MCPError) as forced:
            await client.call_tool(
                "force___whoami", {}, meta={"gatehouse/oauth": {"forceAuthentication": True}}
            )
        _elicitation(forced.value)
        # consent again, then the upstream revokes every token it has seen: the call asks again
        session_uri = await _consent(_elicitation(forced.value).url, "U4", w.oidc)
        assert (await _complete(w, session_uri, user_token=jwt)).status_code == 200
        assert json.loads((await client.call_tool("force___whoami", {})).content[0].text)["sub"] == "U4"
        async with httpx.AsyncClient() as http:
            await http.post(w.upstream.url.replace("/mcp", "/revoke-tokens"))
        with pytest.raises(MCPError) as revoked:
            await client.call_tool("force___whoami", {})
        _elicitation(revoked.value)


async def test_old_protocol_client_gets_an_error_result_with_the_url(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(gid, w.target_body("legacy", inline=True))
    url = w.gateway["gatewayUrl"]
    auth = {"Authorization": f"Bearer {w.user_jwt('U1')}"}
    async with httpx.AsyncClient() as http:
        r = await post(
            http,
            url,
            initialize("2025-06-18"),
            headers=auth,
        )
        session = r.headers["mcp-session-id"]
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "legacy___whoami", "arguments": {}},
        }
        r = await post(
            http, url, call, session=session, headers={**auth, "MCP-Protocol-Version": "2025-06-18"}
        )
    result = r.json()["result"]
    assert result["isError"] is True
    assert f"{w.stack.identity_url}/identities/oauth2/authorize?request_uri=" in result["content"][0]["text"]


async def test_user_auth_targets_need_a_jwt_gateway_and_the_new_protocol(world: World) -> None:
    w = world
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        plain = await admin.create_gateway()
        r = await admin.http.post(f"/gateways/{plain['gatewayId']}/targets", json=w.target_body("nope"))
        assert r.status_code == 400 and "CUSTOM_JWT" in r.json()["error"]["message"]
        old = await admin.create_gateway(
            authorizerType="CUSTOM_JWT",
            authorizerConfiguration=w.gateway["authorizerConfiguration"],
            protocolConfiguration={"mcp": {"supportedVersions": ["2025-06-18"]}},
        )
        r = await admin.http.post(f"/gateways/{old['gatewayId']}/targets", json=w.target_body("nope"))
        assert r.status_code == 400 and "2025-11-25" in r.json()["error"]["message"]


async def test_a_consent_never_given_fails_the_target_with_a_reason(world: World) -> None:
    from pymongo import AsyncMongoClient

    w = world
    gid = w.gateway["gatewayId"]
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("abandoned"))
        assert (await admin.wait_status(gid, created["targetId"]))["status"] == "CREATE_PENDING_AUTH"
        mongo: Any = AsyncMongoClient(w.stack.mongo_url)
        targets = mongo[w.stack.gatehouse_db]["targets"]
        try:  # ten minutes pass
            # The sync-worker may still be clearing the outbox of its last write to this target.
            # FerretDB runs an update as a read then a write, so a write of ours landing in
            # between would be lost: set the expiry again until it sticks.
            for _ in range(100):
                doc = await targets.find_one({"_id": created["targetId"]})
                if doc["status"]["status"] != "CREATE_PENDING_AUTH":
                    break  # the sweeper took it from here
                if "outboxId" not in doc and doc["status"]["pending"]["expiresAt"] == 0:
                    break
                await targets.update_one(
                    {"_id": created["targetId"]}, {"$set": {"status.pending.expiresAt": 0}}
                )
                await asyncio.sleep(0.2)
        finally:
            await mongo.close()
        failed = await admin.wait_status(gid, created["targetId"], statuses={"FAILED"})
    assert "not completed in time" in failed["statusReasons"][0]


async def test_return_urls_of_targets_are_on_the_workload_allow_list(world: World) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    extra = f"{w.catcher.url}/other-app"
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("elsewhere", inline=True, return_url=extra))
        async with httpx.AsyncClient(
            base_url=w.stack.identity_url, headers=w.stack.admin_headers
        ) as identity:
            workload = (await identity.post("/identities/GetWorkloadIdentity", json={"name": gid})).json()
            assert {w.catcher.callback_url, extra} <= set(workload["allowedResourceOauth2ReturnUrls"])
            assert workload["jwtAuthorizer"]["allowedAudience"] == [w.audience]
            await admin.http.delete(f"/gateways/{gid}/targets/{created['targetId']}")
            workload = (await identity.post("/identities/GetWorkloadIdentity", json={"name": gid})).json()
            assert extra not in workload["allowedResourceOauth2ReturnUrls"]


async def test_gatehouse_authorize_cli_completes_admin_and_user_consents(world: World) -> None:
    import asyncio
    import os
    import shutil
    import sys

    w = world
    gid = w.gateway["gatewayId"]
    return_url = f"http://127.0.0.1:{harness.free_port()}/callback"
    cli = shutil.which("gatehouse", path=os.path.dirname(sys.executable)) or "gatehouse"
    env = {**os.environ, "GATEHOUSE_ADMIN_TOKEN": w.stack.admin_token}
    common = ["--return-url", return_url, "--identity-url", w.stack.identity_url]

    async def authorize(args: list[str], user: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            cli, "authorize", *args, *common, env=env, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        try:
            url = ""
            while not url.startswith("http"):
                line = await proc.stdout.readline()
                assert line, "gatehouse authorize ended before printing the URL"
                url = line.decode().strip()
            landed = await browser.consent(url, user, w.oidc.users[user])
            assert landed.startswith(return_url)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, w.target_body("viacli", return_url=return_url))
        assert (await admin.wait_status(gid, created["targetId"]))["status"] == "CREATE_PENDING_AUTH"
        await authorize(["--target", gid, created["targetId"], "--gateway-url", w.stack.gateway_url], "admin")
        ready = await admin.wait_status(gid, created["targetId"], statuses={"READY", "FAILED"})
        assert ready["status"] == "READY" and ready["authorizationStatus"] == "AUTHORIZED"

    jwt = w.user_jwt("U2")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {jwt}"}
    ) as client:
        with pytest.raises(MCPError) as err:
            await client.call_tool("viacli___whoami", {})
        await authorize(["--url", _elicitation(err.value).url, "--user-token", jwt], "U2")
        assert json.loads((await client.call_tool("viacli___whoami", {})).content[0].text)["sub"] == "U2"


async def test_the_audit_trail_holds_an_authorization_code_run(world: World) -> None:
    """The audit subscriber stores the whole history of a run (create, pending, consent, token issued,
    call, failure) and `gatehouse-audit tail` shows it."""
    async with Admin(world.stack.gateway_url, world.stack.admin_headers) as admin:
        own = await admin.create_gateway(  # a gateway of its own: its history is this run's alone
            authorizerType="CUSTOM_JWT", authorizerConfiguration=world.gateway["authorizerConfiguration"]
        )
        w = World(world.stack, world.oidc, world.upstream, world.catcher, world.provider, own, world.audience)
        gid = own["gatewayId"]
        created = await admin.create_target(gid, w.target_body("audited"))
        await _admin_consents(w, admin, created["targetId"], "CREATE_PENDING_AUTH")
    jwt = w.user_jwt("U3")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {jwt}"}
    ) as client:
        with pytest.raises(MCPError) as err:
            await client.call_tool("audited___whoami", {})
        handle = await _consent(_elicitation(err.value).url, "U3", w.oidc)
        assert (await _complete(w, handle, user_token=w.user_jwt("U4"))).status_code == 403  # ends it
        handle = await _consent((await _requires_consent(w, client, "audited___whoami")).url, "U3", w.oidc)
        assert (await _complete(w, handle, user_token=jwt)).status_code == 200
        await client.call_tool("audited___whoami", {})

    db = f"gatehouse_audit_test_{uuid.uuid4().hex[:8]}"
    audit = harness.start_audit(w.stack, db, "audit-3lo")  # started last: it reads the stream from its start
    try:
        wanted = [
            ("target.created", None),
            ("target.authorization_required", None),
            ("identity.token_issued", None),
            ("target.synchronized", None),
            ("tool.invoked", "authorization_required"),
            ("identity.authorization_failed", "user_mismatch"),
            ("identity.token_issued", None),
            ("tool.invoked", "success"),
        ]
        lines: list[str] = []
        for _ in range(100):
            lines = harness.audit_tail(w.stack, db, "--gateway", gid)
            if all(any(t in line and (d is None or d in line) for line in lines) for t, d in wanted):
                break
            await asyncio.sleep(0.3)
        found = [
            next(i for i, line in enumerate(lines) if t in line and (d is None or d in line))
            for t, d in wanted
        ]
        assert found[:4] == sorted(found[:4]) and found[4] < found[-1], lines  # in the order it happened
    finally:
        audit.stop()


async def test_gatehouse_authorize_completes_only_the_session_it_started(world: World) -> None:
    """Someone consents (with their own account) to another of U2's sessions, whose link they saw,
    and their browser brings that session's handle to U2's waiting `gatehouse authorize`: refused,
    that session untouched; U2's own consent through the same command then works."""
    import os
    import shutil
    import sys

    w = world
    gid = w.gateway["gatewayId"]
    return_url = f"http://127.0.0.1:{harness.free_port()}/callback"
    cli = shutil.which("gatehouse", path=os.path.dirname(sys.executable)) or "gatehouse"
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        await admin.create_target(gid, w.target_body("onlymine", inline=True, return_url=return_url))
    jwt = w.user_jwt("U2")
    async with mcp_client(
        w.gateway["gatewayUrl"], mode="legacy", headers={"Authorization": f"Bearer {jwt}"}
    ) as client:
        mine = (await _requires_consent(w, client, "onlymine___whoami", force=True)).url
        leaked = (await _requires_consent(w, client, "onlymine___whoami")).url

        async def authorize(url: str, consenting_url: str, user: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                cli, "authorize", "--url", url, "--user-token", jwt, "--return-url", return_url,
                "--identity-url", w.stack.identity_url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdout is not None
            try:
                line = b""
                while not line.strip().startswith(b"http"):
                    line = await proc.stdout.readline()
                    assert line, "gatehouse authorize ended before printing the URL"
                landed = await browser.consent(consenting_url, user, w.oidc.users[user])
                assert landed.startswith(return_url)
                _, err = await asyncio.wait_for(proc.communicate(), 30)
                return await proc.wait(), err.decode()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

        code, err = await authorize(mine, leaked, "U4")
        assert code == 1 and "completion refused: HTTP 403" in err
        untouched = await _session(w, _request_uri(leaked))
        assert untouched["status"] == "CODE_RECEIVED" and untouched["code"] is not None
        await _requires_consent(w, client, "onlymine___whoami")  # U2 holds no token of U4's
        code, err = await authorize(mine, mine, "U2")
        assert code == 0, err
        assert json.loads((await client.call_tool("onlymine___whoami", {})).content[0].text)["sub"] == "U2"
