"""Proves the OAuth test infrastructure against real processes: oidc-provider (the users' IdP and
the protected MCP servers' authorization server), the JWT-protected SDK MCP server, the
headless-Chromium consent helper (tests/browser.py), the HTTP-only login helper and the
return-URL catcher. No Gatehouse service is involved."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from typing import Any

import anyio
import browser
import harness
import httpx
import jwt
import pytest
from rawmcp import HEADERS, initialize

needs_chromium = pytest.mark.skipif(
    not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
)

M2M = "gatehouse-m2m"
INIT = initialize()


def secret_of(oidc: harness.Proc, client_id: str) -> str:
    return str(oidc.clients[client_id]["client_secret"])  # type: ignore[attr-defined]


def assert_not_logged(*values: str) -> None:
    """None of `values` (tokens, codes, secrets) appears in any log file of the session."""
    values = tuple(v for v in values if v)
    for path in harness.log_files():
        if not path.exists():
            continue
        text = path.read_text("utf-8", "replace")
        for v in values:
            assert v not in text, f"a secret value ({v[:6]}...) leaked into {path}"


def post_initialize(url: str, token: str | None) -> httpx.Response:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(trust_env=False, timeout=30) as http:
        return http.post(url, json=INIT, headers=headers)


async def whoami(url: str, token: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        async with harness.mcp_client(url, mode="legacy", headers={"Authorization": f"Bearer {token}"}) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert {"echo", "whoami"} <= names
            r = await c.call_tool("whoami", {})
            return dict(json.loads(r.content[0].text))


def new_client(oidc: harness.Proc, redirect_uri: str, **metadata: Any) -> tuple[str, str]:
    """A fresh authorization-code client for one test (the shared defaults stay untouched)."""
    client_id = f"infra-{secrets.token_hex(4)}"
    secret = f"gh-test-oidc-secret-{secrets.token_hex(16)}"
    harness.register_oidc_client(
        oidc,
        client_id,
        client_secret=secret,
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        **metadata,
    )
    return client_id, secret


# ------------------------------------------------------------------------------------------
# the provider itself
# ------------------------------------------------------------------------------------------


def test_discovery(oidc_provider: harness.Proc) -> None:
    meta = oidc_provider.metadata  # type: ignore[attr-defined]
    issuer = oidc_provider.url
    assert issuer == f"http://127.0.0.1:{oidc_provider.port}"
    assert meta["issuer"] == issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert meta["response_types_supported"] == ["code"]
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
    ):
        assert meta[endpoint].startswith(issuer + "/"), endpoint
    with httpx.Client(trust_env=False) as http:
        jwks = http.get(meta["jwks_uri"]).json()
        assert [k["kty"] for k in jwks["keys"]] == ["RSA"] and "d" not in jwks["keys"][0]
        # RFC 8414 metadata too (what an OAuth-only client looks up)
        as_meta = http.get(f"{issuer}/.well-known/oauth-authorization-server").json()
        assert as_meta["issuer"] == issuer and as_meta["token_endpoint"] == meta["token_endpoint"]
        # the test API wants its secret
        assert http.post(f"{issuer}/__test/mint", json={}).status_code == 401


# ------------------------------------------------------------------------------------------
# client credentials + the JWT-protected SDK server
# ------------------------------------------------------------------------------------------


async def test_client_credentials_jwt_accepted_by_protected_server(oidc_provider, upstreams) -> None:
    sdk = upstreams.sdk(jwt_issuer=oidc_provider.url)
    secret = secret_of(oidc_provider, M2M)
    for auth in ("basic", "post"):
        resp = harness.client_credentials_token(
            oidc_provider, M2M, secret, resource=sdk.url, scope="mcp:read mcp:write not-offered", auth=auth
        )
        assert resp["token_type"] == "Bearer" and resp["expires_in"] == 300
        assert resp["scope"] == "mcp:read mcp:write"  # what the resource offers, nothing else
        token = resp["access_token"]
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
        claims = harness.verify_jwt(oidc_provider, token, audience=sdk.url)
        assert claims["sub"] == M2M and claims["client_id"] == M2M and claims["aud"] == sdk.url
        assert claims["iss"] == oidc_provider.url and claims["exp"] - claims["iat"] == 300

        me = await whoami(sdk.url, token)
        assert me["sub"] == M2M and me["client_id"] == M2M and me["scope"] == "mcp:read mcp:write"
        assert me["aud"] == sdk.url and me["iss"] == oidc_provider.url
        assert me["authorization"].startswith("sha256:")

    # without `resource` the token is opaque (introspectable, useless for the MCP server)
    opaque = harness.client_credentials_token(oidc_provider, M2M, secret)["access_token"]
    assert opaque.count(".") == 0
    assert harness.introspect_token(oidc_provider, M2M, secret, opaque)["active"] is True
    assert post_initialize(sdk.url, opaque).status_code == 401

    # a wrong client secret is refused
    with pytest.raises(RuntimeError, match="invalid_client"):
        harness.client_credentials_token(oidc_provider, M2M, "wrong-secret", resource=sdk.url)
    assert_not_logged(token, opaque, secret)


async def test_protected_server_refuses_bad_tokens(oidc_provider, upstreams) -> None:
    sdk = upstreams.sdk(jwt_issuer=oidc_provider.url)
    secret = secret_of(oidc_provider, M2M)

    r = post_initialize(sdk.url, None)
    assert r.status_code == 401
    www = r.headers["www-authenticate"]
    assert www.startswith("Bearer ") and 'error="invalid_token"' in www
    assert f'resource_metadata="{sdk.resource_metadata_url}"' in www
    async with httpx.AsyncClient(trust_env=False) as http:
        prm = (await http.get(sdk.resource_metadata_url)).json()  # RFC 9728
        assert prm["resource"] == sdk.url and prm["authorization_servers"] == [oidc_provider.url]
        assert (await http.get(sdk.url.replace("/mcp", "/stats"))).status_code == 200  # still open

    # a token for another resource
    other = harness.client_credentials_token(
        oidc_provider, M2M, secret, resource="http://127.0.0.1:1/other/mcp", scope="mcp:read"
    )["access_token"]
    # signed by the provider but expired / wrong issuer / no exp
    expired = harness.mint_jwt(oidc_provider, sub="U1", aud=sdk.url, client_id=M2M, ttl=-120)
    wrong_iss = harness.mint_jwt(oidc_provider, sub="U1", aud=sdk.url, iss="http://127.0.0.1:2")
    # right claims, signed by a key that is not the provider's (same kid)
    from cryptography.hazmat.primitives.asymmetric import rsa

    kid = jwt.get_unverified_header(expired)["kid"]
    now = int(time.time())
    forged = jwt.encode(
        {"iss": oidc_provider.url, "sub": "U1", "aud": sdk.url, "iat": now, "exp": now + 300},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    for bad in (other, expired, wrong_iss, forged, "not-a-jwt", "a.b.c"):
        r = post_initialize(sdk.url, bad)
        assert r.status_code == 401, bad[:10]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]

    # a real token that expires: 1 s lifetime for this resource only
    harness.update_oidc_settings(oidc_provider, resources={sdk.url: {"accessTokenTTL": 1}})
    short = harness.client_credentials_token(oidc_provider, M2M, secret, resource=sdk.url, scope="mcp:read")
    assert short["expires_in"] == 1
    await anyio.sleep(2.1)
    assert post_initialize(sdk.url, short["access_token"]).status_code == 401

    # and a good minted one (a user's token) passes
    good = harness.mint_jwt(
        oidc_provider, sub="U2", aud=sdk.url, client_id="gatehouse-users", scope="mcp:read"
    )
    assert post_initialize(sdk.url, good).status_code == 200
    me = await whoami(sdk.url, good)
    assert (me["sub"], me["client_id"], me["scope"]) == ("U2", "gatehouse-users", "mcp:read")
    assert_not_logged(other, expired, wrong_iss, forged, short["access_token"], good)


async def test_protected_server_required_scope(oidc_provider, upstreams) -> None:
    sdk = upstreams.sdk(jwt_issuer=oidc_provider.url, jwt_scopes=["mcp:write"])
    secret = secret_of(oidc_provider, M2M)
    read_only = harness.client_credentials_token(
        oidc_provider, M2M, secret, resource=sdk.url, scope="mcp:read"
    )
    r = post_initialize(sdk.url, read_only["access_token"])
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
    rw = harness.client_credentials_token(
        oidc_provider, M2M, secret, resource=sdk.url, scope="mcp:read mcp:write"
    )
    assert post_initialize(sdk.url, rw["access_token"]).status_code == 200


# ------------------------------------------------------------------------------------------
# a person in a browser: authorization code + PKCE, refresh, revocation
# ------------------------------------------------------------------------------------------


@needs_chromium
async def test_browser_authorization_code_flow(oidc_provider, upstreams, return_catcher) -> None:
    sdk = upstreams.sdk(jwt_issuer=oidc_provider.url)
    client_id, secret = new_client(oidc_provider, return_catcher.callback_url)
    verifier, challenge = harness.pkce_pair()
    state = secrets.token_urlsafe(16)
    url = harness.authorization_url(
        oidc_provider,
        client_id,
        return_catcher.callback_url,
        scope="openid profile mcp:read mcp:write",
        resource=sdk.url,
        state=state,
        code_challenge=challenge,
    )

    # start elsewhere, as with the identity service's /identities/oauth2/authorize (302 -> provider)
    start = return_catcher.redirect_to(url)
    started = time.monotonic()
    final = await browser.consent(start, "U1", harness.OIDC_USERS["U1"])
    took = time.monotonic() - started
    assert final.startswith(return_catcher.callback_url + "?")
    hit = return_catcher.wait(timeout=5)
    assert hit["path"] == "/callback"
    q = hit["query"]
    assert q == dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(final).query))
    assert q["state"] == state and q["iss"] == oidc_provider.url and "code" in q
    print(f"browser consent flow: {took:.2f}s ({browser.last_timing})")

    # PKCE: a wrong verifier is refused (and does not burn the code)
    with pytest.raises(RuntimeError, match="invalid_grant"):
        harness.exchange_code(
            oidc_provider, client_id, secret, q["code"], return_catcher.callback_url, "x" * 43
        )
    tokens = harness.exchange_code(
        oidc_provider, client_id, secret, q["code"], return_catcher.callback_url, verifier
    )
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    assert tokens["scope"] == "mcp:read mcp:write"
    access = harness.verify_jwt(oidc_provider, tokens["access_token"], audience=sdk.url)
    assert (access["sub"], access["client_id"], access["scope"]) == ("U1", client_id, "mcp:read mcp:write")
    id_token = harness.verify_jwt(oidc_provider, tokens["id_token"], audience=client_id)
    assert id_token["sub"] == "U1"

    # the MCP server accepts the user's token
    me = await whoami(sdk.url, tokens["access_token"])
    assert me["sub"] == "U1" and me["client_id"] == client_id

    # refresh (rotating) → a new access token for the same resource and a new refresh token
    refreshed = harness.refresh_tokens(oidc_provider, client_id, secret, tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    claims = harness.verify_jwt(oidc_provider, refreshed["access_token"], audience=sdk.url)
    assert claims["sub"] == "U1" and claims["jti"] != access["jti"]
    assert (await whoami(sdk.url, refreshed["access_token"]))["sub"] == "U1"

    # revoke the refresh token: the grant is gone, refresh fails, its access tokens are inactive
    assert (
        harness.revoke_token(
            oidc_provider, client_id, secret, refreshed["refresh_token"], hint="refresh_token"
        )
        == 200
    )
    with pytest.raises(RuntimeError, match="invalid_grant"):
        harness.refresh_tokens(oidc_provider, client_id, secret, refreshed["refresh_token"])
    assert (
        harness.introspect_token(oidc_provider, client_id, secret, refreshed["refresh_token"])["active"]
        is False
    )
    # JWT access tokens are self-contained: they stay valid until exp (oidc-provider refuses to
    # introspect them: "Structured JWT Tokens cannot be introspected")
    with pytest.raises(RuntimeError, match="unsupported_token_type"):
        harness.introspect_token(oidc_provider, client_id, secret, refreshed["access_token"])
    # a code works once (a replay would also revoke everything issued from it: RFC 6749 4.1.2)
    with pytest.raises(RuntimeError, match="invalid_grant"):
        harness.exchange_code(
            oidc_provider, client_id, secret, q["code"], return_catcher.callback_url, verifier
        )
    assert_not_logged(
        q["code"],
        verifier,
        secret,
        harness.OIDC_USERS["U1"],
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    )


@needs_chromium
async def test_browser_deny_and_bad_password(oidc_provider, return_catcher) -> None:
    client_id, _ = new_client(oidc_provider, return_catcher.callback_url)
    _, challenge = harness.pkce_pair()
    url = harness.authorization_url(
        oidc_provider,
        client_id,
        return_catcher.callback_url,
        scope="openid mcp:read",
        resource="http://127.0.0.1:1/mcp",
        code_challenge=challenge,
    )
    final = await browser.consent(url, "U2", harness.OIDC_USERS["U2"], approve=False)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(final).query))
    assert q["error"] == "access_denied" and "code" not in q
    assert return_catcher.wait(timeout=5)["query"]["error"] == "access_denied"

    with pytest.raises(browser.ConsentError, match="refused"):
        await browser.consent(url, "U2", "not-the-password")


def test_pkce_required(oidc_provider) -> None:
    redirect = harness.OIDC_PLACEHOLDER_REDIRECT
    client_id, _ = new_client(oidc_provider, redirect)
    url = harness.authorization_url(oidc_provider, client_id, redirect, scope="openid")  # no challenge
    final = harness.login_http(url, "U1", harness.OIDC_USERS["U1"], stop_at=redirect)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(final).query))
    assert q["error"] == "invalid_request" and "PKCE" in q["error_description"]


# ------------------------------------------------------------------------------------------
# tokens without a browser
# ------------------------------------------------------------------------------------------


def test_user_tokens_without_browser(oidc_provider) -> None:
    gateway_mcp = "http://127.0.0.1:8080/gateways/gw-1/mcp"
    tokens = harness.user_tokens(oidc_provider, "U2", resource=gateway_mcp, scope="openid profile mcp:read")
    access = harness.verify_jwt(oidc_provider, tokens["access_token"], audience=gateway_mcp)
    assert (access["sub"], access["client_id"], access["scope"]) == ("U2", "gatehouse-users", "mcp:read")
    idt = harness.verify_jwt(oidc_provider, tokens["id_token"], audience="gatehouse-users")
    assert idt["sub"] == "U2" and "refresh_token" in tokens

    # without a resource: only the id_token is a JWT (the access token is for userinfo)
    plain = harness.user_tokens(oidc_provider, "U1")
    assert harness.jwt_claims(plain["id_token"])["sub"] == "U1"
    assert plain["access_token"].count(".") == 0

    # consent-page clients work the same way (login_http approves)
    client_id, secret = new_client(oidc_provider, harness.OIDC_PLACEHOLDER_REDIRECT)
    t = harness.user_tokens(
        oidc_provider, "U3", client_id=client_id, client_secret=secret, resource=gateway_mcp, scope="mcp:read"
    )
    assert harness.jwt_claims(t["access_token"])["sub"] == "U3"
    with pytest.raises(harness.InteractionError):
        harness.user_tokens(oidc_provider, "U3", password="wrong")

    # a client with default_resource gets JWTs for it without asking (like Auth0's audience)
    client_id, secret = new_client(
        oidc_provider, harness.OIDC_PLACEHOLDER_REDIRECT, default_resource=gateway_mcp, skip_consent=True
    )
    t = harness.user_tokens(
        oidc_provider, "U1", client_id=client_id, client_secret=secret, scope="openid mcp:read"
    )
    assert harness.verify_jwt(oidc_provider, t["access_token"], audience=gateway_mcp)["scope"] == "mcp:read"

    minted = harness.mint_jwt(
        oidc_provider, sub="U4", aud=gateway_mcp, client_id="gatehouse-users", scope="mcp:read"
    )
    assert harness.verify_jwt(oidc_provider, minted, audience=gateway_mcp)["sub"] == "U4"
    with pytest.raises(jwt.ExpiredSignatureError):
        harness.verify_jwt(oidc_provider, harness.mint_jwt(oidc_provider, sub="U4", aud=gateway_mcp, ttl=-60))
    assert_not_logged(
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        minted,
        *harness.oidc_secrets(oidc_provider),
    )


def test_runtime_client_registration_and_restart(tmp_path) -> None:
    """A provider of its own: keys survive a restart (keys_file), so old JWTs still verify."""
    oidc = harness.start_oidc_provider(keys_file=tmp_path / "keys.json")
    try:
        secret = secret_of(oidc, M2M)
        tok = harness.client_credentials_token(oidc, M2M, secret, resource="http://127.0.0.1:3/mcp")[
            "access_token"
        ]
        oidc.restart()
        assert harness.verify_jwt(oidc, tok, audience="http://127.0.0.1:3/mcp")["sub"] == M2M
        with pytest.raises(RuntimeError, match="invalid_redirect_uri"):
            harness.register_oidc_client(oidc, "broken", client_secret="x" * 32, redirect_uris=["not a url"])
        assert_not_logged(tok, *harness.oidc_secrets(oidc))
    finally:
        oidc.stop()
