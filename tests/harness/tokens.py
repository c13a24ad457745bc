"""Token helpers against the oidc-provider: JWTs, client credentials, PKCE, code exchange, refresh,
revocation, introspection, verification."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .credentials import _remembering
from .oidc import _http, _issuer_of, _test_api, oidc_discovery
from .procs import Proc


@_remembering
def mint_jwt(
    oidc: Proc,
    *,
    sub: str | None = None,
    aud: str | Sequence[str] | None = None,
    client_id: str | None = None,
    scope: str | None = None,
    ttl: int = 300,
    typ: str = "at+jwt",
    **claims: Any,
) -> str:
    """A JWT signed with the provider's own RS256 key (its kid is in jwks_uri), iss = issuer,
    iat = now, exp = now + ttl (negative ttl: already expired), a random jti, plus the given
    claims. For an ID token use typ="JWT" and aud=<client_id>."""
    body: dict[str, Any] = {"ttl": ttl, "typ": typ, "claims": claims}
    for key, value in (("sub", sub), ("aud", aud), ("client_id", client_id), ("scope", scope)):
        if value is not None:
            body[key] = list(value) if isinstance(value, (list, tuple)) else value
    return str(_test_api(oidc, "POST", "/__test/mint", body)["token"])


def _token_endpoint(issuer: str) -> str:
    return str(oidc_discovery(issuer)["token_endpoint"])


def token_request(
    issuer: str,
    client_id: str,
    client_secret: str,
    data: Mapping[str, Any],
    *,
    auth: str = "basic",
) -> Any:
    """POST the token endpoint with client authentication (auth = "basic" | "post");
    returns the httpx.Response (check .status_code / .json())."""
    form = {k: v for k, v in data.items() if v is not None}
    kwargs: dict[str, Any] = {}
    if auth == "basic":
        kwargs["auth"] = (client_id, client_secret)
    elif auth == "post":
        form.update(client_id=client_id, client_secret=client_secret)
    else:
        raise ValueError("auth must be 'basic' or 'post'")
    with _http() as http:
        return http.post(_token_endpoint(issuer), data=form, **kwargs)


def _token_ok(resp: Any, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        try:
            err = resp.json()
            detail = f"{err.get('error')}: {err.get('error_description')}"
        except ValueError:
            detail = resp.text[:200]
        raise RuntimeError(f"{what} failed: HTTP {resp.status_code} {detail}")
    return dict(resp.json())


@_remembering
def client_credentials_token(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    resource: str | None = None,
    scope: str | None = None,
    *,
    auth: str = "basic",
) -> dict[str, Any]:
    """Client-credentials grant; returns the token response {access_token, expires_in,
    token_type, scope?}. With `resource` the access token is a JWT with aud = resource and
    sub = client_id = client_id; scope is the requested scopes the resource offers. Without
    `resource` it is an opaque token (only useful for introspection)."""
    data = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
    return _token_ok(
        token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "client_credentials"
    )


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(
    issuer: Proc | str,
    client_id: str,
    redirect_uri: str,
    *,
    scope: str = "openid",
    resource: str | Sequence[str] | None = None,
    state: str | None = None,
    code_challenge: str | None = None,
    **extra: str,
) -> str:
    """The provider's authorization endpoint URL for a code flow (PKCE S256 challenge required
    by default: pass code_challenge from pkce_pair())."""
    import secrets
    import urllib.parse

    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state or secrets.token_urlsafe(16)),
    ]
    if code_challenge:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    for r in [resource] if isinstance(resource, str) else list(resource or []):
        params.append(("resource", r))
    params += list(extra.items())
    endpoint = oidc_discovery(_issuer_of(issuer))["authorization_endpoint"]
    return f"{endpoint}?{urllib.parse.urlencode(params)}"


@_remembering
def exchange_code(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    *,
    resource: str | None = None,
    auth: str = "basic",
) -> dict[str, Any]:
    """authorization_code grant; returns {access_token, refresh_token?, id_token?, expires_in,
    scope, token_type}. Without `resource` the one granted at the authorization endpoint is used."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "resource": resource,
    }
    return _token_ok(token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "code exchange")


@_remembering
def refresh_tokens(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    refresh_token: str,
    *,
    resource: str | None = None,
    scope: str | None = None,
    auth: str = "basic",
) -> dict[str, Any]:
    """refresh_token grant; raises RuntimeError (with the OAuth error) when refused. With
    rotation (default) the answer carries a new refresh_token and the old one is spent."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "resource": resource,
        "scope": scope,
    }
    return _token_ok(token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "refresh")


def revoke_token(
    issuer: Proc | str, client_id: str, secret: str, token: str, *, hint: str | None = None
) -> int:
    """RFC 7009 revocation; returns the HTTP status (200 also for unknown tokens). Revoking a
    refresh token revokes its whole grant (all its access and refresh tokens)."""
    iss = _issuer_of(issuer)
    url = oidc_discovery(iss)["revocation_endpoint"]
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    with _http() as http:
        return int(http.post(url, data=data, auth=(client_id, secret)).status_code)


def introspect_token(issuer: Proc | str, client_id: str, secret: str, token: str) -> dict[str, Any]:
    """RFC 7662 introspection ({active: bool, sub, client_id, aud, scope, exp, ...}) of opaque
    access tokens and refresh tokens. oidc-provider refuses JWT access tokens (RuntimeError
    "unsupported_token_type"): they are self-contained and stay valid until exp."""
    iss = _issuer_of(issuer)
    url = oidc_discovery(iss)["introspection_endpoint"]
    with _http() as http:
        return _token_ok(http.post(url, data={"token": token}, auth=(client_id, secret)), "introspection")


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified (for assertions in tests)."""
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def verify_jwt(
    issuer: Proc | str, token: str, *, audience: str | Sequence[str] | None = None
) -> dict[str, Any]:
    """Verify a JWT against the issuer's jwks_uri (PyJWT): signature, iss, exp, and aud when
    given. Returns the claims; raises jwt.InvalidTokenError."""
    import jwt

    iss = _issuer_of(issuer)
    with _http() as http:
        jwks = http.get(oidc_discovery(iss)["jwks_uri"]).json()
    kid = jwt.get_unverified_header(token).get("kid")
    keys = [k for k in jwks["keys"] if kid is None or k.get("kid") == kid]
    if not keys:
        raise jwt.InvalidTokenError(f"no key {kid!r} in the issuer's JWKS")
    key = jwt.PyJWK(keys[0]).key
    return dict(
        jwt.decode(
            token,
            key,
            algorithms=["RS256", "PS256", "ES256", "EdDSA"],
            issuer=iss,
            audience=audience,
            options={"verify_aud": audience is not None, "require": ["exp", "iss"]},
        )
    )
