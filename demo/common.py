"""What the demo's scripts share: where everything is, the demo users, and a user's token.

Addresses come from the environment (defaults: `make demo` on 127.0.0.1; compose sets the
in-network ones):

  DEMO_GATEWAY_URL    the gateway (admin API and MCP)            http://127.0.0.1:8080
  DEMO_IDENTITY_URL   identity (admin API)                       http://127.0.0.1:8081
  DEMO_IDP_URL        the demo identity provider's issuer        http://127.0.0.1:8090
  DEMO_IDP_INTERNAL_URL  where Gatehouse reaches that provider   (= DEMO_IDP_URL)
  DEMO_TOOLBOX_URL / DEMO_NOTES_URL  the demo MCP servers as the gateway reaches them
                                     http://127.0.0.1:8091/mcp, http://127.0.0.1:8092/mcp
  DEMO_GATEWAY_PUBLIC_URL  the gateway as MCP URLs name it         (= DEMO_GATEWAY_URL)
  DEMO_IDENTITY_PUBLIC_URL identity as browsers reach it           (= DEMO_IDENTITY_URL)
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

# Demo users of the demo identity provider. Not secrets: the demo prints them, and the provider
# listens on 127.0.0.1 only.
USERS = {"alice": "alice-demo-password", "bob": "bob-demo-password"}

# The provider's clients (tests/servers/oidc/server.mjs):
#   CLI_CLIENT      public (PKCE, no secret): demo/user_token.py gets users' tokens with it
#   LOGIN_CLIENT    the gateway's loginClient: identity signs in the person who consents
#   UPSTREAM_CLIENT identity's OAuth client for the notes server (authorization code)
CLI_CLIENT = "gatehouse-demo-cli"
CLI_REDIRECT = "http://127.0.0.1/demo-cli-callback"  # never fetched: the flow stops at it
LOGIN_CLIENT = "gatehouse-demo-login"
UPSTREAM_CLIENT = "gatehouse-demo-notes"
PROVIDER_NAME = "demo-idp"
GATEWAY_NAME = "demo"
NOTES_SCOPE = "mcp:tools"


@dataclass(frozen=True)
class Demo:
    gateway: str
    identity: str
    idp: str
    idp_internal: str
    toolbox: str
    notes: str
    gateway_public: str
    identity_public: str

    @classmethod
    def from_env(cls) -> Demo:
        env = os.environ.get
        idp = env("DEMO_IDP_URL", "http://127.0.0.1:8090").rstrip("/")
        gateway = env("DEMO_GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
        identity = env("DEMO_IDENTITY_URL", "http://127.0.0.1:8081").rstrip("/")
        return cls(
            gateway=gateway,
            identity=identity,
            idp=idp,
            idp_internal=env("DEMO_IDP_INTERNAL_URL", idp).rstrip("/"),
            toolbox=env("DEMO_TOOLBOX_URL", "http://127.0.0.1:8091/mcp"),
            notes=env("DEMO_NOTES_URL", "http://127.0.0.1:8092/mcp"),
            gateway_public=env("DEMO_GATEWAY_PUBLIC_URL", gateway).rstrip("/"),
            identity_public=env("DEMO_IDENTITY_PUBLIC_URL", identity).rstrip("/"),
        )

    def reach(self, mcp_url: str) -> str:
        """Where this process connects for a gateway MCP URL (in compose: the gateway by its
        service name, while the URL, and the tokens' audience, name its public address)."""
        if mcp_url.startswith(self.gateway_public + "/"):
            return self.gateway + mcp_url[len(self.gateway_public) :]
        return mcp_url


def http_client(**kw: Any) -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=30.0, **kw)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def user_token(idp: str, user: str, resource: str, *, password: str | None = None) -> str:
    """`user`'s access token for `resource` (the gateway's MCP URL): the authorization-code flow
    with PKCE of the public demo client, signing in on the provider's login page over plain HTTP
    as a browser would. Raises RuntimeError with the reason when it fails."""
    if password is None and user not in USERS:
        raise RuntimeError(f"unknown demo user {user!r} (demo users: {', '.join(USERS)})")
    password = password if password is not None else USERS[user]
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": CLI_CLIENT,
            "redirect_uri": CLI_REDIRECT,
            "scope": "openid",
            "resource": resource,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    try:
        return _sign_in(idp, user, password, f"{idp}/auth?{query}", state, verifier)
    except httpx.HTTPError as e:
        raise RuntimeError(
            f"the demo identity provider at {idp} did not answer ({e}): is make demo running?"
        ) from None


def _sign_in(idp: str, user: str, password: str, url: str, state: str, verifier: str) -> str:
    target: str = url
    form: dict[str, str] | None = None
    with http_client(follow_redirects=False) as http:
        for _ in range(10):
            r = http.request("POST" if form else "GET", target, data=form)
            if r.is_redirect:
                target, form = urllib.parse.urljoin(str(r.url), r.headers["location"]), None
                if target.startswith(CLI_REDIRECT):
                    return _exchange(http, idp, target, state, verifier)
                continue
            page = re.search(r'<body data-page="([a-z]+)"', r.text)
            login = re.search(r'<form id="login-form" method="post" action="([^"]+)"', r.text)
            if page is None or page.group(1) != "login" or login is None:
                error = re.search(r'<p id="error-description">([^<]+)<', r.text)
                why = error.group(1) if error else f"HTTP {r.status_code}"
                raise RuntimeError(f"the identity provider did not show its login page: {why}")
            if form is not None or 'id="login-error"' in r.text:
                raise RuntimeError(f"the identity provider refused the login of {user!r}")
            target = urllib.parse.urljoin(str(r.url), login.group(1))
            form = {"username": user, "password": password}
    raise RuntimeError("the sign-in did not end at the demo client's redirect")


def _exchange(http: httpx.Client, idp: str, redirect: str, state: str, verifier: str) -> str:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect).query))
    if query.get("state") != state or "code" not in query:
        raise RuntimeError(f"no authorization code: {query.get('error_description') or query.get('error')}")
    r = http.post(
        f"{idp}/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": CLI_REDIRECT,
            "code_verifier": verifier,
            "client_id": CLI_CLIENT,
        },
    )
    if r.status_code != 200:
        raise RuntimeError(f"the token endpoint refused the code: HTTP {r.status_code} {r.text[:200]}")
    return str(r.json()["access_token"])


@asynccontextmanager
async def mcp_client(url: str, token: str) -> AsyncIterator[Any]:
    """A connected client of the official MCP SDK (`mcp.Client`, Streamable HTTP) with a bearer
    token."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout, trust_env=False) as http:
        # the 2025-11-25 era: a call that needs consent ends with the consent URL (-32042), which
        # call.py prints; the 2026-07-28 era would keep the call waiting while the person consents
        # (docs/mcp-clients.md), which an elicitation callback that opens a browser would do
        client = Client(streamable_http_client(url, http_client=http), cache=None, mode="legacy")
        async with client:
            yield client


def connection_failure(error: BaseException) -> str | None:
    """Why a connection failed, if that is what ``error`` is (the SDK client raises it inside
    exception groups); else None."""
    import httpx2

    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            reason = connection_failure(inner)
            if reason:
                return reason
        return None
    if isinstance(error, (httpx2.HTTPError, httpx.HTTPError, OSError)):
        return f"{type(error).__name__}: {error}"
    return None
