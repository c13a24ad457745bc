"""The identity service end to end (issue 3), against the running stack and a real authorization
server (oidc-provider): credential providers and discovery, client credentials, the authorization
code flow with PKCE in headless Chromium, refresh, revocation, forced re-consent, the binding of a
session to the user who started it, every refusal with its `identity.authorization_failed` reason,
the sealed token vault and its key rotation - and no secret anywhere it must not be.

Every secret a test sees goes into SEEN and every identity response body into RESPONSES;
the last test scans them, every event on the stream and every log file of the run.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import browser
import bson
import harness
import httpx
import nats
import pymongo
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js.api import ConsumerConfig, DeliverPolicy

from gatehouse_contracts.events import decode_event, event_type
from gatehouse_contracts.subjects import STREAM

needs_chromium = pytest.mark.skipif(
    not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
)

RESOURCE = "http://127.0.0.1:1/identity-test/mcp"  # RFC 8707 resource: the AS issues JWTs for it
SHORT = "http://127.0.0.1:1/identity-test/short-lived"  # same, access tokens live 2 seconds
SHORT_TTL = 2
USERS_AUDIENCE = "http://127.0.0.1:1/identity-test/users"  # audience of the users' own JWTs
SCOPES = ["mcp:read"]
REFUSED = {"error": {"code": "AccessDeniedException", "message": "Invalid or expired session"}}

SEEN: set[str] = set()  # every secret the tests saw: client secrets, tokens, codes, verifiers
RESPONSES: list[str] = []  # identity's answers, minus the one field that must carry a token


def saw(*values: str | None) -> None:
    SEEN.update(v for v in values if v)


# --- the identity API --------------------------------------------------------------------------


class Identity:
    """Identity's HTTP API at `url`; records every answer (without its token field) in RESPONSES."""

    def __init__(self, url: str, admin_headers: dict[str, str], return_url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=30)
        self.admin_headers = admin_headers
        self.return_url = return_url  # the default resourceOauth2ReturnUrl

    def at(self, url: str) -> Identity:
        """The same client for another identity process."""
        return Identity(url, self.admin_headers, self.return_url)

    def post(self, path: str, body: dict[str, Any], *, admin: bool = True) -> httpx.Response:
        r = self.http.post(path, json=body, headers=self.admin_headers if admin else {})
        record(r)
        return r

    def ok(self, path: str, body: dict[str, Any], status: int = 200, **kw: Any) -> dict[str, Any]:
        r = self.post(path, body, **kw)
        assert r.status_code == status, r.text
        return r.json()  # type: ignore[no-any-return]

    def get(self, url: str) -> httpx.Response:
        r = self.http.get(url)
        record(r)
        return r

    def workload_token(self, workload: str, user_jwt: str) -> str:
        body = {"workloadName": workload, "userToken": user_jwt}
        token = self.ok("/identities/GetWorkloadAccessTokenForJWT", body)["workloadAccessToken"]
        saw(token)
        return str(token)

    def token_request(self, wat: str, provider: str, **fields: Any) -> httpx.Response:
        """GetResourceOauth2Token (over HTTP it needs credentials too: the admin's, here)."""
        body = {
            "workloadIdentityToken": wat,
            "resourceCredentialProviderName": provider,
            "scopes": SCOPES,
            "oauth2Flow": "USER_FEDERATION",
            "resources": [RESOURCE],
            "resourceOauth2ReturnUrl": self.return_url,
            **fields,
        }
        return self.post("/identities/oauth2/token", body)

    def resource_token(self, wat: str, provider: str, **fields: Any) -> dict[str, Any]:
        r = self.token_request(wat, provider, **fields)
        assert r.status_code == 200, r.text
        saw(r.json().get("accessToken"))
        return r.json()  # type: ignore[no-any-return]

    def complete(
        self, session_uri: str, *, user_jwt: str = "", user_id: str = "", admin: bool = False
    ) -> httpx.Response:
        who = {"userToken": user_jwt} if user_jwt else {"userId": user_id}
        body = {"userIdentifier": who, "sessionUri": session_uri}
        return self.post("/identities/CompleteResourceTokenAuth", body, admin=admin)


def record(r: httpx.Response) -> None:
    text = r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if isinstance(body, dict):
            text = json.dumps(
                {k: v for k, v in body.items() if k not in ("accessToken", "workloadAccessToken")}
            )
    location = r.headers.get("location", "")
    if "session_id=" in location:  # the one answer that must carry a completion handle
        location = location.split("?")[0]
    RESPONSES.append(text + " " + location)


@dataclass
class Provider:
    name: str
    client_id: str
    client_secret: str
    callback_url: str


def discovery_url(oidc: harness.Proc) -> str:
    return f"{oidc.url}/.well-known/openid-configuration"


def provider_body(name: str, discovery: str, client_id: str, secret: str) -> dict[str, Any]:
    config = {
        "oauthDiscovery": {"discoveryUrl": discovery},
        "clientId": client_id,
        "clientSecret": secret,
    }
    return {
        "name": name,
        "credentialProviderVendor": "CustomOauth2",
        "oauth2ProviderConfigInput": {"customOauth2ProviderConfig": config},
    }


def new_provider(identity: Identity, oidc: harness.Proc) -> Provider:
    """A provider at identity for a fresh client at the AS whose redirect_uri is its callbackUrl."""
    client_id, secret = f"ident-{secrets.token_hex(4)}", f"gh-test-ident-secret-{secrets.token_hex(16)}"
    saw(secret)
    name = f"prov-{secrets.token_hex(4)}"
    body = provider_body(name, discovery_url(oidc), client_id, secret)
    created = identity.ok("/identities/CreateOauth2CredentialProvider", body, 201)
    harness.register_oidc_client(
        oidc,
        client_id,
        client_secret=secret,
        redirect_uris=[created["callbackUrl"]],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        token_endpoint_auth_method="client_secret_basic",
    )
    return Provider(name, client_id, secret, created["callbackUrl"])


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def consent_http(
    authorization_url: str, user: str, *, stop_at: str | None = None, approve: bool = True, http: Any = None
) -> str:
    """Log in and consent at the AS without a browser (``http``: the client whose cookies are the
    browser's); the URL the flow ended on."""
    final = harness.login_http(
        authorization_url, user, harness.OIDC_USERS[user], stop_at=stop_at, approve=approve, http=http
    )
    saw(query_of(final).get("code"), query_of(final).get("session_id"))
    return final


def claims(token: str) -> dict[str, Any]:
    return harness.jwt_claims(token)


# --- MongoDB: the vault as stored --------------------------------------------------------------


def mongo_db(world: World, name: str | None = None) -> Any:
    """Identity's database (or another one) through the module's one MongoDB client."""
    return world.mongo[name or world.stack.identity_db]


def unseal(record: dict[str, Any], aad: str, keys: dict[str, str] | None = None) -> str:
    """Open an AES-GCM record {kid, nonce, data} with the test key ring (the test knows the keys)."""
    key = (keys or {"test1": harness.VAULT_KEY})[record["kid"]]
    plain = AESGCM(base64.b64decode(key)).decrypt(bytes(record["nonce"]), bytes(record["data"]), aad.encode())
    return plain.decode()


def stored_refresh_token(db: Any, provider: Provider) -> str:
    doc = db.token_vault.find_one({"providerName": provider.name})
    token = unseal(doc["refresh"], f"vault:{doc['_id']}:refresh")
    saw(token)
    return token


# --- events ------------------------------------------------------------------------------------


def bus_url(world: World) -> str:
    """NATS for the test's own reads, as NATS's admin user."""
    return harness.nats_admin_url(world.stack.nats_url)


async def event_mark(world: World) -> int:
    """The stream's last sequence number: read events after it with identity_events(world, mark)."""
    nc = await nats.connect(bus_url(world))
    try:
        return int((await nc.jetstream().stream_info(STREAM)).state.last_seq)
    finally:
        await nc.close()


async def raw_events(world: World, after: int = 0, subject: str = "gatehouse.events.>") -> list[bytes]:
    """Every stored event on `subject` with a sequence number above `after`, oldest first."""
    nc = await nats.connect(bus_url(world))
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
    found: list[bytes] = []
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True, config=config)
        while True:
            try:
                msg = await sub.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                return found
            found.append(msg.data)
            if msg.metadata.num_pending == 0:
                return found
    finally:
        await nc.close()


async def identity_events(world: World, after: int) -> list[Any]:
    return [decode_event(d) for d in await raw_events(world, after, "gatehouse.events.identity.>")]


def reasons(events: list[Any]) -> list[str]:
    return [e.reason for e in events if event_type(e) == "identity.authorization_failed"]


def kinds(events: list[Any]) -> list[str]:
    return [event_type(e) for e in events]


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class World:
    stack: harness.Stack
    oidc: harness.Proc
    api: Identity
    catcher: harness.ReturnCatcher
    workload: str
    jwt: dict[str, str]  # user -> the user's own JWT (from the AS, aud USERS_AUDIENCE)
    wat: dict[str, str]  # user -> workload access token bound to that user
    mongo: Any  # pymongo.MongoClient


def workload_body(name: str, oidc: harness.Proc, catcher: harness.ReturnCatcher) -> dict[str, Any]:
    """A workload that trusts the users' JWTs from the AS and lets browsers return to the catcher."""
    return {
        "name": name,
        "allowedResourceOauth2ReturnUrls": [catcher.callback_url, f"{catcher.url}/other"],
        "jwtAuthorizer": {
            "discoveryUrl": discovery_url(oidc),
            "allowedAudience": [USERS_AUDIENCE],
            "allowedClients": ["gatehouse-users"],
        },
    }


@pytest.fixture(scope="module")
def world(stack: harness.Stack, oidc_provider: harness.Proc) -> Iterator[World]:
    harness.update_oidc_settings(oidc_provider, resources={SHORT: {"accessTokenTTL": SHORT_TTL}})
    catcher = harness.start_return_catcher()
    api = Identity(stack.identity_url, stack.admin_headers, catcher.callback_url)
    workload = f"wl-{secrets.token_hex(4)}"
    api.ok("/identities/CreateWorkloadIdentity", workload_body(workload, oidc_provider, catcher), 201)
    jwts = {}
    for user in ("U1", "U2", "U3"):
        tokens = harness.user_tokens(oidc_provider, user, resource=USERS_AUDIENCE, scope="openid mcp:read")
        saw(tokens["access_token"], tokens.get("refresh_token"), tokens.get("id_token"))
        jwts[user] = tokens["access_token"]
    wats = {user: api.workload_token(workload, token) for user, token in jwts.items()}
    mongo: Any = pymongo.MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
    try:
        yield World(stack, oidc_provider, api, catcher, workload, jwts, wats, mongo)
    finally:
        mongo.close()
        api.http.close()
        catcher.stop()


@pytest.fixture
def provider(world: World) -> Provider:
    return new_provider(world.api, world.oidc)


def consent_to(pending: dict[str, Any], user: str = "U1") -> str:
    """Log in and consent as `user` to a pending session (no browser); the completion handle the
    return URL received (never the sessionUri)."""
    landed = consent_http(pending["authorizationUrl"], user)
    handle = query_of(landed)["session_id"]
    assert set(query_of(landed)) == {"session_id"} and handle != pending["sessionUri"]
    assert len(handle) >= 40
    return handle


def consented_session(world: World, provider: Provider, user: str = "U1", **fields: Any) -> str:
    """Start a session for `user` and consent to it; its completion handle."""
    return consent_to(world.api.resource_token(world.wat[user], provider.name, **fields), user)


async def outlive(token: str, obtained: float) -> None:
    """Wait until a short-lived token has expired both at the AS (exp) and for identity, which
    counts expires_in from when it received the token (before `obtained`)."""
    await asyncio.sleep(max(claims(token)["exp"], obtained + SHORT_TTL) - time.time() + 0.3)


def stored_token(world: World, provider: Provider, user: str = "U1", **fields: Any) -> str:
    """Run the whole consent for `user` and return the access token identity now hands out."""
    handle = consented_session(world, provider, user, **fields)
    assert world.api.complete(handle, user_jwt=world.jwt[user]).json() == {}
    return str(world.api.resource_token(world.wat[user], provider.name, **fields)["accessToken"])


# --- credential providers ----------------------------------------------------------------------


def test_provider_discovery_and_admin(world: World) -> None:
    api, oidc = world.api, world.oidc
    provider = new_provider(api, oidc)
    got = api.ok("/identities/GetOauth2CredentialProvider", {"name": provider.name})
    assert got["callbackUrl"] == provider.callback_url
    assert provider.callback_url.startswith(f"{world.stack.identity_url}/identities/oauth2/callback/")
    meta = got["authorizationServerMetadata"]
    assert (meta["issuer"], meta["authorizationEndpoint"], meta["tokenEndpoint"]) == (
        oidc.metadata["issuer"],  # type: ignore[attr-defined]
        oidc.metadata["authorization_endpoint"],  # type: ignore[attr-defined]
        oidc.metadata["token_endpoint"],  # type: ignore[attr-defined]
    )
    listed = api.ok("/identities/ListOauth2CredentialProviders", {"maxResults": 1000})["items"]
    assert provider.name in {p["name"] for p in listed}

    update = {
        "name": provider.name,
        "credentialProviderVendor": "GithubOauth2",
        "oauth2ProviderConfigInput": {
            "githubOauth2ProviderConfig": {"clientId": "gh", "clientSecret": "gh-s3-not-a-real-secret"}
        },
    }
    saw("gh-s3-not-a-real-secret")
    github = api.ok("/identities/UpdateOauth2CredentialProvider", update)
    assert (
        github["authorizationServerMetadata"]["tokenEndpoint"]
        == "https://github.com/login/oauth/access_token"
    )
    assert github["callbackUrl"] == provider.callback_url  # the same provider id
    assert api.ok("/identities/DeleteOauth2CredentialProvider", {"name": provider.name}) == {
        "name": provider.name
    }
    assert api.post("/identities/GetOauth2CredentialProvider", {"name": provider.name}).status_code == 404

    def create(discovery: str) -> httpx.Response:
        body = provider_body(f"bad-{secrets.token_hex(4)}", discovery, "c", "s")
        return api.post("/identities/CreateOauth2CredentialProvider", body)

    unreachable = create("http://127.0.0.1:9/.well-known/openid-configuration")
    not_metadata = create(oidc.metadata["jwks_uri"])  # type: ignore[attr-defined]
    assert (unreachable.status_code, not_metadata.status_code) == (400, 400)
    assert "unreachable" in unreachable.json()["error"]["message"]
    assert "not OAuth 2.0 authorization server metadata" in not_metadata.json()["error"]["message"]
    no_admin = api.post("/identities/ListOauth2CredentialProviders", {}, admin=False)
    assert no_admin.status_code == 401
    for shown in (got, *listed, github):
        assert "clientSecret" not in shown and provider.client_secret not in json.dumps(shown)


# --- client credentials ------------------------------------------------------------------------


def test_client_credentials_token_is_cached(world: World, provider: Provider) -> None:
    wat = world.api.ok("/identities/GetWorkloadAccessToken", {"workloadName": world.workload})
    saw(wat["workloadAccessToken"])
    first = world.api.resource_token(wat["workloadAccessToken"], provider.name, oauth2Flow="M2M")
    second = world.api.resource_token(world.wat["U1"], provider.name, oauth2Flow="M2M")
    assert first["accessToken"] == second["accessToken"]
    token = harness.verify_jwt(world.oidc, first["accessToken"], audience=RESOURCE)
    assert (token["sub"], token["client_id"], token["scope"]) == (provider.client_id,) * 2 + ("mcp:read",)
    # an updated provider (it could be another client now) is not served the old registration's token
    update = provider_body(
        provider.name, discovery_url(world.oidc), provider.client_id, provider.client_secret
    )
    world.api.ok("/identities/UpdateOauth2CredentialProvider", update)
    third = world.api.resource_token(world.wat["U1"], provider.name, oauth2Flow="M2M")
    assert third["accessToken"] != first["accessToken"]


# --- the authorization code flow ---------------------------------------------------------------


@needs_chromium
async def test_authorization_code_with_pkce_in_a_browser(world: World, provider: Provider) -> None:
    api, mark = world.api, await event_mark(world)
    pending = api.resource_token(world.wat["U1"], provider.name)
    uri = pending["sessionUri"]
    assert uri.startswith("urn:ietf:params:oauth:request_uri:") and pending["sessionStatus"] == "IN_PROGRESS"
    assert 590 < pending["sessionExpiresAt"] - time.time() <= 600
    assert pending["authorizationUrl"] == (
        f"{world.stack.identity_url}/identities/oauth2/authorize?"
        + urllib.parse.urlencode({"request_uri": uri})
    )
    # the link sends the browser to the AS with PKCE S256 and a random state
    session = mongo_db(world).authorization_sessions.find_one({"_id": uri})
    verifier = unseal(session["verifier"], f"session:{uri}:verifier")
    saw(verifier)
    to_as = api.get(pending["authorizationUrl"])
    assert to_as.status_code == 302
    # ... and binds the flow to this browser: a cookie for this session only, not readable by scripts
    cookie = to_as.headers["set-cookie"]
    assert cookie.startswith("gatehouse_consent_") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and 590 <= int(cookie.split("Max-Age=")[1].split(";")[0]) <= 600
    asked = query_of(to_as.headers["location"])
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert asked["code_challenge"] == challenge and asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == provider.callback_url and asked["client_id"] == provider.client_id
    assert len(asked["state"]) >= 32 and asked["resource"] == RESOURCE and asked["scope"] == "mcp:read"
    assert (
        api.resource_token(world.wat["U1"], provider.name, sessionUri=uri)["sessionStatus"] == "IN_PROGRESS"
    )

    landed = await browser.consent(pending["authorizationUrl"], "U1", harness.OIDC_USERS["U1"])
    handle = query_of(landed)["session_id"]  # a completion handle only this browser saw
    saw(handle)
    assert landed == f"{world.catcher.callback_url}?" + urllib.parse.urlencode({"session_id": handle})
    assert world.catcher.wait(timeout=5)["query"] == {"session_id": handle} and handle != uri
    assert api.complete(uri, user_jwt=world.jwt["U1"]).json() == REFUSED  # the request_uri completes nothing
    assert api.complete(handle, user_jwt=world.jwt["U1"]).json() == {}

    token = api.resource_token(world.wat["U1"], provider.name)["accessToken"]
    assert api.resource_token(world.wat["U1"], provider.name, sessionUri=uri)["accessToken"] == token
    granted = harness.verify_jwt(world.oidc, token, audience=RESOURCE)
    assert (granted["sub"], granted["client_id"], granted["scope"]) == ("U1", provider.client_id, "mcp:read")
    events = await identity_events(world, mark)
    assert kinds(events) == ["identity.authorization_failed", "identity.token_issued"]
    assert reasons(events) == ["unknown_session"]


async def test_expired_access_token_is_refreshed(world: World, provider: Provider) -> None:
    first, obtained = stored_token(world, provider, resources=[SHORT]), time.time()
    assert world.api.resource_token(world.wat["U1"], provider.name, resources=[SHORT])["accessToken"] == first
    mark = await event_mark(world)
    await outlive(first, obtained)
    second = world.api.resource_token(world.wat["U1"], provider.name, resources=[SHORT])["accessToken"]
    assert second != first
    assert harness.verify_jwt(world.oidc, second, audience=SHORT)["sub"] == "U1"
    events = await identity_events(world, mark)
    assert kinds(events) == ["identity.token_refreshed"]
    assert (events[0].provider_name, events[0].user_id) == (provider.name, f"jwt:{world.oidc.url}#U1")
    stored_refresh_token(mongo_db(world), provider)  # for the leak scan: the rotated one


async def test_revoked_refresh_token_starts_a_new_session(world: World, provider: Provider) -> None:
    first, obtained = stored_token(world, provider, resources=[SHORT]), time.time()
    refresh = stored_refresh_token(mongo_db(world), provider)
    assert harness.revoke_token(world.oidc, provider.client_id, provider.client_secret, refresh) == 200
    mark = await event_mark(world)
    await outlive(first, obtained)
    again = world.api.resource_token(world.wat["U1"], provider.name, resources=[SHORT])
    assert again["sessionStatus"] == "IN_PROGRESS" and again["accessToken"] is None
    events = await identity_events(world, mark)
    assert kinds(events) == ["identity.token_revoked"]
    assert events[0].reason == "refresh refused: invalid_grant"
    assert mongo_db(world).token_vault.count_documents({"providerName": provider.name}) == 0


async def test_force_authentication_drops_the_token(world: World, provider: Provider) -> None:
    stored_token(world, provider)
    mark = await event_mark(world)
    forced = world.api.resource_token(world.wat["U1"], provider.name, forceAuthentication=True)
    assert forced["sessionStatus"] == "IN_PROGRESS" and forced["accessToken"] is None
    events = await identity_events(world, mark)
    assert kinds(events) == ["identity.token_revoked"] and events[0].reason == "authentication forced"
    later = world.api.resource_token(world.wat["U1"], provider.name)  # the old token is gone for good
    assert later["sessionStatus"] == "IN_PROGRESS" and later["sessionUri"] != forced["sessionUri"]
    assert world.api.complete(consent_to(forced), user_jwt=world.jwt["U1"]).json() == {}
    assert world.api.resource_token(world.wat["U1"], provider.name)["accessToken"]


async def test_provider_error_fails_the_session(world: World, provider: Provider) -> None:
    pending = world.api.resource_token(world.wat["U1"], provider.name)
    mark = await event_mark(world)
    landed = consent_http(pending["authorizationUrl"], "U1", approve=False)
    assert query_of(landed) == {"error": "access_denied"}  # nothing to complete: no handle
    polled = world.api.resource_token(world.wat["U1"], provider.name, sessionUri=pending["sessionUri"])
    assert polled["sessionStatus"] == "FAILED"
    assert world.api.complete(pending["sessionUri"], user_jwt=world.jwt["U1"]).json() == REFUSED
    assert reasons(await identity_events(world, mark)) == ["provider_error", "unknown_session"]


# --- binding and refusals ----------------------------------------------------------------------


async def test_only_the_user_who_started_the_session_completes_it(world: World, provider: Provider) -> None:
    api, mark = world.api, await event_mark(world)
    early = api.resource_token(world.wat["U1"], provider.name)
    assert api.complete(early["sessionUri"], user_jwt=world.jwt["U1"]).json() == REFUSED  # not a handle
    handle = consented_session(world, provider, "U1")
    wrong_aud = harness.mint_jwt(
        world.oidc, sub="U1", aud="http://127.0.0.1:1/elsewhere", client_id="gatehouse-users"
    )
    saw(wrong_aud)
    refusals = [
        api.complete(handle, user_jwt=wrong_aud),  # U1's sub, but not a token this workload trusts
        api.complete(handle, user_id="U1"),  # a userId without admin credentials
    ]
    assert [(r.status_code, r.json()) for r in refusals] == [(403, REFUSED)] * 2
    assert api.complete(handle, user_jwt=world.jwt["U1"]).json() == {}  # nothing above spoiled it
    token = api.resource_token(world.wat["U1"], provider.name)["accessToken"]
    assert claims(token)["sub"] == "U1"
    # the wrong user with a handle ends the session for good: its own user cannot finish it after
    for intruder in ({"user_jwt": world.jwt["U1"]}, {"user_id": "U2", "admin": True}):
        pending = api.resource_token(world.wat["U2"], provider.name, forceAuthentication=True)
        stolen = consent_to(pending, "U2")
        assert api.complete(stolen, **intruder).json() == REFUSED
        assert api.complete(stolen, user_jwt=world.jwt["U2"]).json() == REFUSED
        polled = api.resource_token(world.wat["U2"], provider.name, sessionUri=pending["sessionUri"])
        assert polled["sessionStatus"] == "FAILED"
        session = mongo_db(world).authorization_sessions.find_one({"_id": pending["sessionUri"]})
        assert (session["status"], session["code"], session["verifier"]) == ("FAILED", None, None)
    assert api.resource_token(world.wat["U2"], provider.name)["accessToken"] is None  # U2 got nothing
    events = await identity_events(world, mark)
    assert reasons(events) == [
        "unknown_session",
        "invalid_user_token",
        "not_permitted",
        "user_mismatch",  # U1 with U2's handle
        "user_mismatch",  # ... which ended it: U2 too is refused
        "user_mismatch",  # id:U2 is not jwt:<iss>#U2
        "user_mismatch",
    ]


async def test_a_user_id_session_needs_admin_credentials(world: World, provider: Provider) -> None:
    """Flow 3's shape: a service names the user by id, an admin consents, the service completes."""
    user_id = f"gw-{secrets.token_hex(4)}-target"
    body = {"workloadName": world.workload, "userId": user_id}
    assert world.api.post("/identities/GetWorkloadAccessTokenForUserId", body, admin=False).status_code == 401
    wat = world.api.ok("/identities/GetWorkloadAccessTokenForUserId", body)["workloadAccessToken"]
    saw(wat)
    pending = world.api.resource_token(wat, provider.name, forceAuthentication=True)
    handle = consent_to(pending, "admin")
    mark = await event_mark(world)
    assert world.api.complete(handle, user_id=user_id).json() == REFUSED  # no admin credentials
    assert world.api.complete(handle, user_id=user_id, admin=True).json() == {}
    assert claims(world.api.resource_token(wat, provider.name)["accessToken"])["sub"] == "admin"
    events = await identity_events(world, mark)
    assert reasons(events) == ["not_permitted"]
    assert kinds(events)[-1] == "identity.token_issued" and events[-1].user_id == f"id:{user_id}"


def test_custom_parameters_cannot_override_standard_ones(world: World, provider: Provider) -> None:
    custom = {"login_hint": "U3", "prompt": "consent"}
    pending = world.api.resource_token(world.wat["U3"], provider.name, customParameters=custom)
    asked = query_of(world.api.get(pending["authorizationUrl"]).headers["location"])
    assert asked["login_hint"] == "U3" and asked["prompt"] == "consent" and asked["response_type"] == "code"
    for name in ("state", "redirect_uri", "code_challenge", "scope", "client_id", "resource"):
        r = world.api.token_request(world.wat["U3"], provider.name, customParameters={name: "x"})
        assert r.status_code == 400 and name in r.json()["error"]["message"]


async def test_a_session_completes_once(world: World, provider: Provider) -> None:
    handle = consented_session(world, provider)
    assert world.api.complete(handle, user_jwt=world.jwt["U1"]).json() == {}
    mark = await event_mark(world)
    again = world.api.complete(handle, user_jwt=world.jwt["U1"])
    assert (again.status_code, again.json()) == (403, REFUSED)
    unknown = world.api.complete("urn:ietf:params:oauth:request_uri:nope", user_jwt=world.jwt["U1"])
    assert (unknown.status_code, unknown.json()) == (403, REFUSED)
    assert reasons(await identity_events(world, mark)) == ["replayed", "unknown_session"]


async def test_tampered_replayed_or_injected_state_is_refused(world: World, provider: Provider) -> None:
    """RFC 9700 §4.7: a code obtained in one browser, taken to another (the victim's), goes nowhere."""
    pending = world.api.resource_token(world.wat["U1"], provider.name)
    own_browser = world.api.at(world.stack.identity_url)  # its own cookie jar: the consenting browser
    callback = consent_http(
        pending["authorizationUrl"], "U1", stop_at=provider.callback_url, http=own_browser.http
    )
    answer = query_of(callback)
    assert answer["code"] and answer["state"]
    mark = await event_mark(world)
    sessions = mongo_db(world).authorization_sessions
    before = sessions.find_one({"_id": pending["sessionUri"]})
    tampered = callback.replace(f"state={answer['state']}", f"state={answer['state'][:-4]}AAAA")
    refused = own_browser.get(tampered)
    assert refused.status_code == 400 and "location" not in refused.headers
    injected = world.api.get(callback)  # another browser: no binding cookie for this session
    assert injected.status_code == 403 and "location" not in injected.headers
    assert "did not start this authorization" in injected.text
    if browser.chromium_available():  # and the victim's real browser, lured to the attacker's link
        status, text = await browser.visit(callback)
        assert status == 403 and "did not start this authorization" in text
    assert sessions.find_one({"_id": pending["sessionUri"]}) == before  # nothing changed
    genuine = own_browser.get(callback)
    assert genuine.status_code == 302
    handle = query_of(genuine.headers["location"])["session_id"]
    saw(handle)
    assert handle != pending["sessionUri"] and "Max-Age=0" in genuine.headers["set-cookie"]
    replayed = own_browser.get(callback)
    assert replayed.status_code == 400 and "location" not in replayed.headers
    own_browser.http.close()
    assert reasons(await identity_events(world, mark)) == [
        "unknown_session",
        *["browser_mismatch"] * (2 if browser.chromium_available() else 1),
        "replayed",
    ]
    assert world.api.complete(handle, user_jwt=world.jwt["U1"]).json() == {}


async def test_expired_session_is_refused(world: World, provider: Provider) -> None:
    """Sessions from an identity whose sessions live 4 s, served by the main one (same database)."""
    env = {**world.stack.env, "IDENTITY_SESSION_TTL_SECONDS": "4"}
    short = harness.start_service("identity", env, public_url=world.stack.identity_url, label="identity-ttl4")
    api = world.api.at(short.url or "")
    try:
        late_completion = api.resource_token(world.wat["U1"], provider.name)
        late_callback = api.resource_token(world.wat["U1"], provider.name)
    finally:
        api.http.close()
        short.stop()
    handle = consent_to(late_completion)  # the code arrives in time ...
    callback = consent_http(late_callback["authorizationUrl"], "U1", stop_at=provider.callback_url)
    expiry = max(late_completion["sessionExpiresAt"], late_callback["sessionExpiresAt"])
    assert expiry - time.time() < 4
    await asyncio.sleep(expiry - time.time() + 0.2)  # ... but nobody uses it before the session ends
    mark, uri = await event_mark(world), late_completion["sessionUri"]
    assert world.api.complete(handle, user_jwt=world.jwt["U1"]).json() == REFUSED
    assert world.api.get(callback).status_code == 400
    assert world.api.get(late_callback["authorizationUrl"]).status_code == 400
    poll = world.api.token_request(world.wat["U1"], provider.name, sessionUri=uri)
    assert (poll.status_code, poll.json()) == (403, REFUSED)
    assert reasons(await identity_events(world, mark)) == ["expired", "expired"]


async def test_return_url_must_be_on_the_allow_list(world: World, provider: Provider) -> None:
    sessions = mongo_db(world).authorization_sessions
    before = sessions.count_documents({})
    for url in (
        f"{world.catcher.url}/elsewhere",
        f"{world.catcher.callback_url}?x=1",
        "https://evil.example/cb",
    ):
        r = world.api.token_request(world.wat["U1"], provider.name, resourceOauth2ReturnUrl=url)
        assert r.status_code == 400 and "allow-list" in r.json()["error"]["message"]
    assert sessions.count_documents({}) == before  # nothing started
    other = world.api.resource_token(
        world.wat["U1"], provider.name, resourceOauth2ReturnUrl=f"{world.catcher.url}/other"
    )
    landed = consent_http(other["authorizationUrl"], "U1")
    assert landed.startswith(f"{world.catcher.url}/other?session_id=")


# --- the vault at rest -------------------------------------------------------------------------


def test_vault_holds_no_plaintext_token(world: World) -> None:
    docs = list(mongo_db(world).token_vault.find({}))
    assert docs
    for doc in docs:
        raw = bson.encode(doc)
        assert doc["access"]["kid"] == "test1"
        for secret in SEEN:
            assert secret.encode() not in raw
    secrets_at_rest = bson.encode({"p": list(mongo_db(world).credential_providers.find({}))})
    assert not any(s.encode() in secrets_at_rest for s in SEEN)


def test_rotate_vault_reseals_and_tokens_come_back(world: World) -> None:
    """A second identity on its own database (rotation touches every record of a database)."""
    db_name, port = f"{world.stack.identity_db}_rotation", harness.free_port()
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    saw(new_key)

    def identity(vault_keys: str) -> tuple[harness.Proc, dict[str, str]]:
        env = {**world.stack.env, "IDENTITY_DB": db_name, "IDENTITY_VAULT_KEYS": vault_keys}
        return harness.start_service("identity", env, port=port, label="identity-rotation"), env

    proc, _ = identity(harness.VAULT_KEYS)
    there = dataclasses.replace(world, api=world.api.at(proc.url or ""))
    login_secret = f"login-secret-{secrets.token_hex(16)}"
    saw(login_secret)
    body = workload_body(world.workload, world.oidc, world.catcher)
    body["jwtAuthorizer"]["loginClient"] = {"clientId": "login-rotation", "clientSecret": login_secret}
    harness.register_oidc_client(  # with a login client identity also checks who consents
        world.oidc,
        "login-rotation",
        client_secret=login_secret,
        redirect_uris=[f"{proc.url}/identities/oauth2/login/callback"],
        grant_types=["authorization_code"],
        skip_consent=True,
    )
    created = there.api.ok("/identities/CreateWorkloadIdentity", body, 201)
    assert created["jwtAuthorizer"]["loginClient"] == {"clientId": "login-rotation", "clientSecret": ""}
    provider = new_provider(there.api, world.oidc)
    token = stored_token(there, provider)  # sealed under test1
    proc.stop()

    # a second key: test2 seals new records, test1 still opens the old ones
    proc, env = identity(f"{harness.VAULT_KEYS},test2:{new_key}")
    try:
        assert there.api.resource_token(world.wat["U1"], provider.name)["accessToken"] == token
        rotated = subprocess.run(
            [sys.executable, "-m", "gatehouse_identity", "rotate-vault"],
            env={**env, "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotated.returncode == 0, rotated.stderr
        RESPONSES.append(rotated.stdout + rotated.stderr)
        assert "token_vault: 1 records sealed again" in rotated.stdout
    finally:
        proc.stop()
    db = mongo_db(world, db_name)
    vault_doc = db.token_vault.find_one({})
    assert {vault_doc["access"]["kid"], vault_doc["refresh"]["kid"]} == {"test2"}
    assert {d["clientSecret"]["kid"] for d in db.credential_providers.find({})} == {"test2"}
    keys = {"test2": new_key}
    login = db.workload_identities.find_one({"_id": world.workload})["jwtAuthorizer"]["loginClient"]
    assert unseal(login["clientSecret"], f"workload:{world.workload}:login-client", keys) == login_secret
    assert unseal(vault_doc["access"], f"vault:{vault_doc['_id']}:access", keys) == token

    proc, _ = identity(f"test2:{new_key}")  # the old key is gone: everything must be under the new one
    try:
        assert there.api.resource_token(world.wat["U1"], provider.name)["accessToken"] == token
        m2m = there.api.resource_token(world.wat["U1"], provider.name, oauth2Flow="M2M")  # needs the secret
        assert claims(m2m["accessToken"])["client_id"] == provider.client_id
    finally:
        proc.stop()
        there.api.http.close()
        world.mongo.drop_database(db_name)


# --- no secret where it must not be ------------------------------------------------------------


async def test_no_secret_in_responses_events_or_logs(world: World) -> None:
    """Runs last: everything this module saw against everything the run wrote."""
    saw(harness.ADMIN_TOKEN, harness.VAULT_KEY, harness.TOKEN_SECRET, *harness.oidc_secrets(world.oidc))
    assert len(SEEN) > 20 and len(RESPONSES) > 50
    for n, text in enumerate(RESPONSES):
        leaked = [s[:6] for s in SEEN if s in text]
        assert not leaked, f"secrets ({leaked}...) in identity's answer #{n}"
    for data in await raw_events(world):
        leaked = [s[:6] for s in SEEN if s.encode() in data]
        assert not leaked, f"secrets ({leaked}...) in a {decode_event(data).__class__.__name__} event"
    for path in harness.log_files():
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        leaked = [s[:6] for s in SEEN if s in text]
        assert not leaked, f"secrets ({leaked}...) in the log {path}"
