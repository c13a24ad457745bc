"""The network guard at connect time, against the running stack: DNS rebinding through a real DNS
server, identity's outbound fetches (deny-list, size limits), the discovery issuer rule, a
provider's changed registration, https for what carries tokens, endpoint queries kept out of
statuses and events, JWKS fetches single-flight per issuer.

Names resolve through a small real DNS server (dnslib, UDP on 127.0.0.1) that a gateway and an
identity process started here use instead of the system resolver (``TARGET_DNS_SERVERS``); the
addresses a name resolves to are then filtered by the same code as with the system resolver.
"Internal" addresses are simulated inside 127.0.0.0/8: ``127.0.0.3`` is denied, and a server
listening there would answer if anything connected to it.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import harness
import httpx
import nats
import pymongo
import pytest
from admin import Admin, target_body
from aiohttp import web
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from rawmcp import HEADERS, initialize, open_session, rpc

from gatehouse_contracts.events import decode_event
from gatehouse_contracts.netguard import DEFAULT_DENIED_NETWORKS
from gatehouse_identity.crypto import Vault
from gatehouse_identity.tokens import vault_key

INTERNAL = "127.0.0.3"
ALLOWED = "127.0.0.2"
DENIED = f"{DEFAULT_DENIED_NETWORKS},{INTERNAL}/32"
ECHO = {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}


# --- a real DNS server whose answers the test changes ----------------------------------------


class Zone(BaseResolver):  # type: ignore[misc]
    """A records for the names in ``names``; NXDOMAIN for the others."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        address = self.names.get(str(request.q.qname).rstrip(".").lower())
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        return reply


@dataclass
class Guarded:
    zone: Zone
    gateway: harness.Proc
    identity: harness.Proc
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def guarded(stack: harness.Stack) -> Iterator[Guarded]:
    """A gateway and an identity that resolve through the test's DNS server and deny 127.0.0.3."""
    zone = Zone()
    dns = DNSServer(
        zone, port=0, address="127.0.0.1", logger=DNSLogger("-request,-reply", logf=lambda _: None)
    )
    dns.start_thread()
    env = {
        **stack.env,
        "TARGET_DNS_SERVERS": f"127.0.0.1:{dns.server.server_address[1]}",
        "TARGET_DENIED_NETWORKS": DENIED,
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "30",
        "IDENTITY_HTTP_TIMEOUT_SECONDS": "3",
    }
    gateway = harness.start_service("gateway", env, label="gateway-guarded")
    identity = harness.start_service("identity", env, label="identity-guarded")
    try:
        yield Guarded(zone, gateway, identity, env)
    finally:
        identity.stop()
        gateway.stop()
        dns.stop()
        dns.server.server_close()


# --- small HTTP servers in the test's own loop -------------------------------------------------


@asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """``app`` on host:port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


def recorder(hits: list[str]) -> web.Application:
    """An HTTP server that answers anything and records that it was reached."""

    async def handle(request: web.Request) -> web.Response:
        hits.append(f"{request.method} {request.path}")
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def endless(sent: list[int]) -> Any:
    """A handler whose JSON answer never ends; ``sent[0]`` counts what it managed to send."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b'{"keys": [' + b" " * 65536
        try:
            while sent[0] < 1024**3:
                await response.write(chunk)
                sent[0] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return handle


async def drip(request: web.Request) -> web.StreamResponse:
    """An answer that goes on a byte every half second (each read is quick, the whole never ends)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b" ")
            await asyncio.sleep(0.5)
    except (ConnectionError, RuntimeError):
        pass
    return response


def discovery_doc(issuer: str, jwks_uri: str | None = None) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": jwks_uri or f"{issuer}/jwks",
    }


# --- identity's API ----------------------------------------------------------------------------


def provider_body(name: str, discovery: str | None, client_id: str = "c", *, metadata: Any = None) -> Any:
    oauth_discovery = {"discoveryUrl": discovery} if discovery else {"authorizationServerMetadata": metadata}
    config = {
        "oauthDiscovery": oauth_discovery,
        "clientId": client_id,
        "clientSecret": "gh-test-guard-secret",
    }
    return {
        "name": name,
        "credentialProviderVendor": "CustomOauth2",
        "oauth2ProviderConfigInput": {"customOauth2ProviderConfig": config},
    }


async def create_provider(http: httpx.AsyncClient, base: str, body: Any) -> httpx.Response:
    return await http.post(f"{base}/identities/CreateOauth2CredentialProvider", json=body)


async def provider_names(http: httpx.AsyncClient, base: str) -> set[str]:
    r = await http.post(f"{base}/identities/ListOauth2CredentialProviders", json={"maxResults": 100})
    return {p["name"] for p in r.json()["items"]}


# --- 4. the deny-list on the address actually connected to -------------------------------------


def sdk_server_on(host: str) -> harness.Proc:
    """The SDK test server on ``host`` (not 127.0.0.1: there the SDK itself refuses other Host
    headers, its own DNS-rebinding protection)."""
    port = harness.free_port()
    server = harness.SERVERS / "sdk_server.py"
    cmd = [sys.executable, str(server), "--port", str(port), "--host", host, "--json-response"]
    proc = harness.Proc("sdk-server-rebind", cmd, cwd=harness.REPO, port=port, role="upstream")
    proc.start()
    return proc.wait_port(host=host)


async def test_dns_rebinding_cannot_reach_a_denied_address(stack: harness.Stack, guarded: Guarded) -> None:
    allowed = sdk_server_on(ALLOWED)  # the real target
    port = allowed.port or 0
    hits: list[str] = []
    zone = guarded.zone.names
    zone["rebind.gatehouse.test"] = ALLOWED
    zone["internal.gatehouse.test"] = INTERNAL
    async with (
        serve(recorder(hits), INTERNAL, port),  # an "internal" service on the same port
        Admin(guarded.gateway.url or "", stack.admin_headers) as admin,
        httpx.AsyncClient(timeout=60) as http,
    ):
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        # at admin time: a name that resolves to a denied address, and one that does not resolve
        for host, why in (("internal", "denied network"), ("nowhere", "does not resolve")):
            body = target_body("t", f"http://{host}.gatehouse.test:{port}/mcp", inline_tools=[ECHO])
            r = await admin.http.post(f"/gateways/{gid}/targets", json=body)
            assert r.status_code == 400 and why in r.json()["error"]["message"], r.text
        body = target_body("rebind", f"http://rebind.gatehouse.test:{port}/mcp", inline_tools=[ECHO])
        await admin.create_target(gid, body)
        url = f"{guarded.gateway.url}/gateways/{gid}/mcp"
        session = await open_session(http, url)
        call = {"name": "rebind___echo", "arguments": {"text": "before"}}
        answer = await rpc(http, url, session, "tools/call", call)
        assert answer.get("result", {}).get("content", [{}])[0].get("text") == "before", answer

        # the name now points at the internal address; the real target goes away, so the next call
        # needs a new connection (the gateway's DNS cache holds the old answer for a few seconds)
        zone["rebind.gatehouse.test"] = INTERNAL
        allowed.stop()
        deadline = time.monotonic() + 60
        while True:
            answer = await rpc(http, url, session, "tools/call", call)
            message = answer.get("error", {}).get("message", "")
            if "denied network" in message:
                break
            assert "error" in answer and time.monotonic() < deadline, answer
            await asyncio.sleep(0.5)
        assert "rebind.gatehouse.test" in message and "-32001" not in message
        assert hits == []  # nothing ever reached the internal service


async def test_the_sync_worker_connects_only_where_the_guard_allows(
    stack: harness.Stack, guarded: Guarded
) -> None:
    allowed = sdk_server_on(ALLOWED)
    port = allowed.port or 0
    hits: list[str] = []
    guarded.zone.names["sync.gatehouse.test"] = ALLOWED
    worker = stack.sync_worker
    saved = dict(worker.env)
    worker.env.update({k: guarded.env[k] for k in ("TARGET_DNS_SERVERS", "TARGET_DENIED_NETWORKS")})
    worker.restart()
    try:
        async with (
            serve(recorder(hits), INTERNAL, port),
            Admin(guarded.gateway.url or "", stack.admin_headers) as admin,
        ):
            gid = (await admin.create_gateway())["gatewayId"]
            body = target_body("synced", f"http://sync.gatehouse.test:{port}/mcp")
            target_id = (await admin.create_target(gid, body))["targetId"]
            ready = await admin.wait_status(gid, target_id)
            assert ready["status"] == "READY" and ready["toolCount"] >= 5, ready

            guarded.zone.names["sync.gatehouse.test"] = INTERNAL
            allowed.stop()
            deadline = time.monotonic() + 60
            while True:  # until the worker's DNS cache lets go of the old answer
                sync = {"targetIdList": [target_id]}
                r = await admin.http.put(f"/gateways/{gid}/synchronizeTargets", json=sync)
                assert r.status_code == 202, r.text
                done = await admin.wait_status(gid, target_id, statuses={"SYNCHRONIZE_UNSUCCESSFUL"})
                if "denied network" in done["statusReasons"][0]:
                    break
                assert time.monotonic() < deadline, done
            assert done["statusReasons"][0].startswith("Endpoint not allowed"), done
        assert hits == []  # the worker never reached the internal service
    finally:
        worker.env.clear()
        worker.env.update(saved)
        worker.restart()


async def test_identity_fetches_only_where_the_guard_allows(stack: harness.Stack, guarded: Guarded) -> None:
    sent = [0]
    internal_hits: list[str] = []
    big = web.Application()
    big.router.add_get("/.well-known/openid-configuration", endless(sent))
    big.router.add_get("/drip/.well-known/openid-configuration", drip)
    base = guarded.identity.url or ""
    async with (
        serve(recorder(internal_hits), INTERNAL) as internal,
        serve(big) as huge,
        httpx.AsyncClient(headers=stack.admin_headers, timeout=60) as http,
    ):
        before = await provider_names(http, base)
        port = urllib.parse.urlsplit(internal).port
        guarded.zone.names["idp.gatehouse.test"] = INTERNAL
        refused = {
            # discovery on a denied address, literal and by name
            "literal": provider_body("g-lit", f"{internal}/.well-known/openid-configuration"),
            "named": provider_body(
                "g-name", f"https://idp.gatehouse.test:{port}/.well-known/openid-configuration"
            ),
            # a token endpoint there, given inline
            "token": provider_body(
                "g-token",
                None,
                metadata={
                    "issuer": "https://idp.example",
                    "authorizationEndpoint": "https://idp.example/authorize",
                    "tokenEndpoint": f"{internal}/token",
                },
            ),
            # a discovery document that never ends, and one that comes a byte at a time
            "huge": provider_body("g-huge", f"{huge}/.well-known/openid-configuration"),
            "drip": provider_body("g-drip", f"{huge}/drip/.well-known/openid-configuration"),
        }
        for case, body in refused.items():
            r = await create_provider(http, base, body)
            assert r.status_code == 400, (case, r.text)
            message = r.json()["error"]["message"]
            expected = {"huge": "over 1048576 bytes", "drip": "ReadTimeout"}.get(case, "denied network")
            assert expected in message, (case, message)
        assert internal_hits == [] and sent[0] < 64 * 1024**2
        assert await provider_names(http, base) == before  # nothing stored


async def test_a_token_endpoint_rebound_to_a_denied_address_fails_clearly(
    stack: harness.Stack, guarded: Guarded
) -> None:
    base = guarded.identity.url or ""
    async with httpx.AsyncClient(headers=stack.admin_headers, timeout=60) as http:
        guarded.zone.names["as.gatehouse.test"] = "127.0.0.1"
        name = f"g-m2m-{secrets.token_hex(3)}"
        metadata = {
            "issuer": "https://as.gatehouse.test",
            "authorizationEndpoint": "https://as.gatehouse.test/authorize",
            "tokenEndpoint": "https://as.gatehouse.test:9443/token",
        }
        r = await create_provider(http, base, provider_body(name, None, metadata=metadata))
        assert r.status_code == 201, r.text
        guarded.zone.names["as.gatehouse.test"] = INTERNAL  # re-pointed after the admin's check
        wat = (
            await http.post(
                f"{base}/identities/GetWorkloadAccessTokenForUserId",
                json={"workloadName": await workload(http, base), "userId": "alice"},
            )
        ).json()["workloadAccessToken"]
        body = {
            "workloadIdentityToken": wat,
            "resourceCredentialProviderName": name,
            "scopes": [],
            "oauth2Flow": "M2M",
            "resources": [],
        }
        r = await http.post(f"{base}/identities/oauth2/token", json=body)
        # refused before connecting (a connection would have failed the TLS handshake instead)
        assert r.status_code == 503, r.text
        assert "as.gatehouse.test" in r.json()["error"]["message"]
        assert "denied network" in r.json()["error"]["message"]


async def workload(http: httpx.AsyncClient, base: str, return_urls: list[str] | None = None) -> str:
    name = f"wl-guard-{secrets.token_hex(4)}"
    body = {"name": name, "allowedResourceOauth2ReturnUrls": return_urls or ["http://127.0.0.1:9/back"]}
    r = await http.post(f"{base}/identities/CreateWorkloadIdentity", json=body)
    assert r.status_code == 201, r.text
    return name


# --- the discovery document names the issuer of its URL -----------------------------------------


def custom_jwt(discovery: str, audience: str) -> dict[str, Any]:
    return {
        "authorizerType": "CUSTOM_JWT",
        "authorizerConfiguration": {
            "customJWTAuthorizer": {"discoveryUrl": discovery, "allowedAudience": [audience]}
        },
    }


async def test_a_discovery_document_must_name_the_issuer_of_its_url(
    stack: harness.Stack, oidc_provider: harness.Proc
) -> None:
    # the real IdP reached under another name than its issuer (http://127.0.0.1:<port>)
    port = urllib.parse.urlsplit(oidc_provider.url).port
    elsewhere = f"http://localhost:{port}/.well-known/openid-configuration"
    right = f"{oidc_provider.url}/.well-known/openid-configuration"
    async with (
        httpx.AsyncClient(headers=stack.admin_headers, timeout=60) as http,
        Admin(stack.gateway_url, stack.admin_headers) as admin,
    ):
        before = await provider_names(http, stack.identity_url)
        r = await create_provider(
            http, stack.identity_url, provider_body(f"iss-{secrets.token_hex(3)}", elsewhere)
        )
        message = r.json()["error"]["message"]
        assert r.status_code == 400 and "does not match" in message and repr(oidc_provider.url) in message
        assert await provider_names(http, stack.identity_url) == before
        name = f"iss-{secrets.token_hex(3)}"
        assert (
            await create_provider(http, stack.identity_url, provider_body(name, right))
        ).status_code == 201
        # the gateway's inbound issuer, the same rule
        gateways = (await admin.http.get("/gateways")).json()["items"]
        r = await admin.http.post("/gateways", json={"name": "iss", **custom_jwt(elsewhere, "aud")})
        assert r.status_code == 400 and "does not match" in r.json()["error"]["message"], r.text
        assert (await admin.http.get("/gateways")).json()["items"] == gateways
        await admin.create_gateway(**custom_jwt(right, "aud"))


# --- 5. https for what carries tokens ------------------------------------------------------------


def oauth_target(name: str, endpoint: str, grant: str, return_url: str | None = None) -> dict[str, Any]:
    oauth: dict[str, Any] = {"providerName": "p", "scopes": [], "grantType": grant}
    if return_url:
        oauth["defaultReturnUrl"] = return_url
    return {
        "name": name,
        "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": endpoint}}},
        "credentialProviderConfigurations": [
            {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
        ],
    }


async def test_https_is_required_where_tokens_go(stack: harness.Stack, oidc_provider: harness.Proc) -> None:
    base = stack.identity_url
    async with (
        httpx.AsyncClient(headers=stack.admin_headers, timeout=60) as http,
        Admin(stack.gateway_url, stack.admin_headers) as admin,
    ):
        # return URLs of a workload identity
        body = {"name": f"wl-{secrets.token_hex(4)}", "allowedResourceOauth2ReturnUrls": []}
        body["allowedResourceOauth2ReturnUrls"] = ["https://app.example/back", "http://app.example/back"]
        r = await http.post(f"{base}/identities/CreateWorkloadIdentity", json=body)
        assert r.status_code == 400 and "must be an https URL" in r.json()["error"]["message"], r.text
        loopback = ["http://127.0.0.1:9/back", "http://localhost:9/back", "http://[::1]:9/back"]
        body["allowedResourceOauth2ReturnUrls"] = ["https://app.example/back", *loopback]
        assert (await http.post(f"{base}/identities/CreateWorkloadIdentity", json=body)).status_code == 201
        # a provider's endpoints
        before = await provider_names(http, base)
        for field_name in ("authorizationEndpoint", "tokenEndpoint"):
            metadata = {
                "issuer": "https://idp.example",
                "authorizationEndpoint": "https://idp.example/authorize",
                "tokenEndpoint": "https://idp.example/token",
                field_name: "http://idp.example/plain",
            }
            r = await create_provider(http, base, provider_body("plain", None, metadata=metadata))
            assert r.status_code == 400 and "must be an https URL" in r.json()["error"]["message"], r.text
        assert await provider_names(http, base) == before
        # a gateway's inbound issuer, targets that receive tokens and their return URLs
        r = await admin.http.post(
            "/gateways", json={"name": "plain", **custom_jwt("http://idp.example/.well-known/x", "aud")}
        )
        assert r.status_code == 400 and "must be an https URL" in r.json()["error"]["message"], r.text
        where: dict[str, str] = {}

        async def plain_keys(request: web.Request) -> web.Response:
            return web.json_response(discovery_doc(where["issuer"], "http://keys.example/jwks"))

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", plain_keys)
        async with serve(app) as issuer:
            where["issuer"] = issuer
            body = {"name": "plain", **custom_jwt(f"{issuer}/.well-known/openid-configuration", "aud")}
            r = await admin.http.post("/gateways", json=body)
            assert r.status_code == 400 and "jwks_uri must be an https URL" in r.text, r.text
        gateway = await admin.create_gateway(
            **custom_jwt(f"{oidc_provider.url}/.well-known/openid-configuration", "aud")
        )
        gid = gateway["gatewayId"]
        for body in (
            oauth_target("m2m", "http://mcp.example/mcp", "CLIENT_CREDENTIALS"),
            oauth_target("user", "https://mcp.example/mcp", "AUTHORIZATION_CODE", "http://app.example/back"),
        ):
            r = await admin.http.post(f"/gateways/{gid}/targets", json=body)
            assert r.status_code == 400 and "must be an https URL" in r.json()["error"]["message"], r.text
        assert (await admin.http.get(f"/gateways/{gid}/targets")).json()["items"] == []


# --- 5. an endpoint's query (an API key?) stays out of statuses and events ------------------------


async def test_endpoint_queries_stay_out_of_statuses_and_events(stack: harness.Stack) -> None:
    secret = f"gh-test-query-secret-{secrets.token_hex(8)}"
    harness.remember_secret(secret)
    failed: list[Any] = []
    done = asyncio.Event()
    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    try:
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            gateway = await admin.create_gateway()
            target_id = ""

            async def on_failed(msg: Any) -> None:
                event = decode_event(msg.data)
                if event.target_id == target_id:
                    failed.append(event)
                    if event.terminal:
                        done.set()

            await nc.subscribe("gatehouse.events.target.sync_failed", cb=on_failed)
            body = target_body("keyed", f"http://127.0.0.1:9/mcp?api_key={secret}")
            target_id = (await admin.create_target(gateway["gatewayId"], body))["targetId"]
            await asyncio.wait_for(done.wait(), 60)
            target = await admin.wait_status(gateway["gatewayId"], target_id)
    finally:
        await nc.close()
    assert target["status"] == "FAILED"
    shown = [*target["statusReasons"], *(e.reason for e in failed)]
    assert all("http://127.0.0.1:9/mcp" in text and secret not in text for text in shown), shown
    assert secret not in stack.sync_worker.log_text()


# --- 4. changing a provider's registration drops what the old one left ----------------------------


async def test_a_changed_registration_drops_stored_tokens_and_pending_sessions(
    stack: harness.Stack, oidc_provider: harness.Proc
) -> None:
    base = stack.identity_url
    discovery = f"{oidc_provider.url}/.well-known/openid-configuration"
    name = f"reg-{secrets.token_hex(3)}"
    async with httpx.AsyncClient(headers=stack.admin_headers, timeout=60) as http:
        wl = await workload(http, base)
        r = await create_provider(http, base, provider_body(name, discovery, "client-one"))
        assert r.status_code == 201, r.text
        provider_id = r.json()["callbackUrl"].rsplit("/", 1)[1]

        async def wat(user: str) -> str:
            body = {"workloadName": wl, "userId": user}
            r = await http.post(f"{base}/identities/GetWorkloadAccessTokenForUserId", json=body)
            return str(r.json()["workloadAccessToken"])

        async def token(user: str) -> dict[str, Any]:
            body = {
                "workloadIdentityToken": await wat(user),
                "resourceCredentialProviderName": name,
                "scopes": ["mcp:read"],
                "oauth2Flow": "USER_FEDERATION",
                "resources": [],
            }
            r = await http.post(f"{base}/identities/oauth2/token", json=body)
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        async def link_works(url: str) -> bool:
            r = await http.get(url, follow_redirects=False)
            assert r.status_code in (302, 400), r.text
            return r.status_code == 302

        # alice has a token in the vault (sealed as identity seals it), bob a consent under way
        vault = Vault(harness.VAULT_KEYS)
        key = vault_key(wl, "id:alice", provider_id, ["mcp:read"], [])
        stored = f"gh-test-stored-at-{secrets.token_hex(8)}"
        harness.remember_secret(stored)
        now = time.time()
        db = pymongo.MongoClient(stack.mongo_url)[stack.identity_db]
        db.token_vault.insert_one(
            {
                "_id": key,
                "workload": wl,
                "user": "id:alice",
                "providerId": provider_id,
                "providerName": name,
                "scopes": ["mcp:read"],
                "resources": [],
                "access": vault.seal(stored, f"vault:{key}:access"),
                "refresh": None,
                "expiresAt": now + 3600,
                "renewAt": now + 3000,
                "updatedAt": now,
            }
        )
        assert (await token("alice")).get("accessToken") == stored
        pending = (await token("bob"))["authorizationUrl"]
        assert await link_works(pending)

        # a new secret only: the same registration, everything stays
        same = provider_body(name, discovery, "client-one")
        same["oauth2ProviderConfigInput"]["customOauth2ProviderConfig"]["clientSecret"] = "gh-test-guard-new"
        r = await http.post(f"{base}/identities/UpdateOauth2CredentialProvider", json=same)
        assert r.status_code == 200, r.text
        assert (await token("alice")).get("accessToken") == stored
        assert await link_works(pending)

        # another client: alice's token and bob's session belonged to the old one
        revoked: asyncio.Queue[Any] = asyncio.Queue()
        nc = await nats.connect(harness.nats_admin_url(stack.nats_url))

        async def on_revoked(msg: Any) -> None:
            event = decode_event(msg.data)
            if event.provider_name == name:
                await revoked.put(event)

        await nc.subscribe("gatehouse.events.identity.token_revoked", cb=on_revoked)
        other = provider_body(name, discovery, "client-two")
        r = await http.post(f"{base}/identities/UpdateOauth2CredentialProvider", json=other)
        assert r.status_code == 200, r.text
        event = await asyncio.wait_for(revoked.get(), 30)  # the gateways forget what they kept of it
        assert (event.user_id, event.reason) == ("id:alice", "the credential provider's registration changed")
        await nc.close()
        assert db.token_vault.count_documents({"providerId": provider_id}) == 0
        again = await token("alice")
        assert again.get("accessToken") is None and again["authorizationUrl"]
        assert not await link_works(pending)
        assert await link_works(again["authorizationUrl"])
        db.client.close()


# --- 5. JWKS fetches wait for their own issuer only ----------------------------------------------


async def test_a_slow_issuer_stalls_only_its_own_tokens(
    stack: harness.Stack, guarded: Guarded, oidc_provider: harness.Proc
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "slow-1"})
    fetches: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()
    where: dict[str, str] = {}

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response(discovery_doc(where["issuer"]))

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(request.path)
        started.set()
        await release.wait()
        return web.json_response({"keys": [key.as_dict(private=False)]})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", metadata)
    app.router.add_get("/jwks", jwks)
    gateway = guarded.gateway.url or ""
    async with (
        serve(app) as issuer,
        Admin(gateway, stack.admin_headers) as admin,
        httpx.AsyncClient(timeout=60) as http,
    ):
        where["issuer"] = issuer
        slow = await admin.create_gateway(**custom_jwt(f"{issuer}/.well-known/openid-configuration", "slow"))
        fast = await admin.create_gateway(
            **custom_jwt(f"{oidc_provider.url}/.well-known/openid-configuration", "fast")
        )

        def slow_token(sub: str) -> str:
            claims = {
                "iss": issuer,
                "sub": sub,
                "aud": "slow",
                "iat": int(time.time()),
                "exp": int(time.time()) + 300,
            }
            return jose_jwt.encode({"alg": "RS256", "kid": "slow-1"}, claims, key)

        async def initialize_as(gateway_id: str, token: str) -> httpx.Response:
            headers = {**HEADERS, "Authorization": f"Bearer {token}"}
            return await http.post(f"{gateway}/gateways/{gateway_id}/mcp", json=initialize(), headers=headers)

        waiting = [
            asyncio.create_task(initialize_as(slow["gatewayId"], slow_token(sub))) for sub in ("s1", "s2")
        ]
        await asyncio.wait_for(started.wait(), 60)  # the slow issuer holds its JWKS answer
        fast_user = harness.mint_jwt(oidc_provider, sub="U1", aud="fast")
        answered = await initialize_as(fast["gatewayId"], fast_user)
        assert answered.status_code == 200, answered.text
        assert not any(task.done() for task in waiting)
        release.set()
        for task in waiting:
            assert (await task).status_code == 200
        assert fetches == ["/jwks"]  # two validations, one fetch
