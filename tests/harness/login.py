"""A person logging in and consenting at the oidc-provider over plain HTTP, and their tokens."""

from __future__ import annotations

import contextlib
from typing import Any

from .credentials import _remembering
from .procs import Proc
from .tokens import authorization_url, exchange_code, pkce_pair


class InteractionError(RuntimeError):
    """The provider's login/consent pages did not lead where expected (bad password, an error
    page, a redirect loop)."""


def _redact(url: str) -> str:
    """A URL without query, fragment (they may carry codes or state) and interaction ids."""
    import re

    return re.sub(r"/(interaction|auth)/[^/]+", r"/\1/:uid", url.split("?")[0].split("#")[0])


def login_http(
    url: str,
    username: str,
    password: str,
    *,
    approve: bool = True,
    stop_at: str | None = None,
    max_steps: int = 30,
    http: Any = None,
) -> str:
    """What tests/browser.py consent() does, without a browser: GET `url` (for example an
    identity-service authorization URL that 302s to the provider), follow redirects with a
    cookie jar, submit the provider's login form and then its consent form (approve or deny),
    and return the URL the flow ends on (its query carries code/state or session_id).

    Redirects are followed across hosts (provider -> identity callback -> return URL) until a
    page that is not a login/consent page; with `stop_at` (a URL prefix), the first redirect to
    a URL starting with it is returned without being fetched (for redirect_uris nobody serves).
    `http`: an httpx.Client to use (its cookie jar is the "browser"), else a fresh one.
    """
    import re
    import urllib.parse

    import httpx

    def stop(target: str) -> bool:
        return stop_at is not None and target.startswith(stop_at)

    if stop(url):
        return url
    own = http is None
    if own:
        http = httpx.Client(trust_env=False, timeout=30.0, follow_redirects=False)
    with http if own else contextlib.nullcontext(http):
        method, target, form = "GET", url, None
        for _ in range(max_steps):
            r = http.request(method, target, data=form)
            if r.is_redirect:
                target = urllib.parse.urljoin(str(r.url), r.headers["location"])
                method, form = "GET", None
                if stop(target):
                    return target
                continue
            html = r.text if "html" in r.headers.get("content-type", "") else ""
            m = re.search(r'<body data-page="([a-z]+)"', html)
            kind = m.group(1) if m else None
            base = str(r.url)
            if kind == "login":
                if 'id="login-error"' in html and form is not None:
                    raise InteractionError(f"login as {username!r} refused at {_redact(base)}")
                action = re.search(r'<form id="login-form" method="post" action="([^"]+)"', html)
                assert action, "login page without form#login-form"
                method, target = "POST", urllib.parse.urljoin(base, action.group(1))
                form = {"username": username, "password": password}
                continue
            if kind == "consent":
                form_id = "consent-form" if approve else "deny-form"
                action = re.search(rf'<form id="{form_id}" method="post" action="([^"]+)"', html)
                assert action, f"consent page without form#{form_id}"
                method, target = "POST", urllib.parse.urljoin(base, action.group(1))
                form = {"decision": "approve" if approve else "deny"}
                continue
            if kind == "error":
                text = re.sub(r"<[^>]+>", " ", html)
                raise InteractionError(
                    f"provider error page at {_redact(base)}: {' '.join(text.split())[:300]}"
                )
            return base
        raise InteractionError(f"no end after {max_steps} steps (last: {_redact(target)})")


@_remembering
def user_tokens(
    oidc: Proc,
    username: str,
    *,
    client_id: str = "gatehouse-users",
    client_secret: str | None = None,
    password: str | None = None,
    redirect_uri: str | None = None,
    scope: str = "openid profile email",
    resource: str | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    """A user's tokens without a browser: authorization-code flow with PKCE over plain HTTP
    (login_http), then the code exchange. Returns the token response: id_token (aud =
    client_id), access_token (a JWT with aud = resource when `resource` is given, else opaque),
    refresh_token (when the client may refresh), scope, expires_in.

    Defaults: the `gatehouse-users` client (no consent page), the password from the provider's
    config, and redirect_uri = the client's first registered one (the flow stops at it without
    fetching it, so the placeholder works).
    """
    import secrets
    import urllib.parse

    client = getattr(oidc, "clients", {}).get(client_id, {})
    secret = client_secret if client_secret is not None else client.get("client_secret")
    if secret is None:
        raise ValueError(f"no client_secret known for {client_id!r}")
    pw = password if password is not None else getattr(oidc, "users", {}).get(username)
    if pw is None:
        raise ValueError(f"no password known for {username!r}")
    redirect = redirect_uri or (client.get("redirect_uris") or [None])[0]
    if not redirect:
        raise ValueError(f"no redirect_uri for {client_id!r}")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = authorization_url(
        oidc, client_id, redirect, scope=scope, resource=resource, state=state, code_challenge=challenge
    )
    final = login_http(url, username, pw, approve=approve, stop_at=redirect)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(final).query))
    if query.get("state") != state:
        raise InteractionError("state mismatch on the redirect back")
    if "code" not in query:
        raise InteractionError(f"no code on the redirect back: error={query.get('error')!r}")
    return exchange_code(oidc, client_id, secret, query["code"], redirect, verifier)
