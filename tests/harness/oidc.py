"""OAuth 2.0 / OpenID Connect: a real authorization server (oidc-provider) and its test API."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .procs import DEFAULT_TIMEOUT, LOCALHOST, SERVERS, TESTS, Proc, StartError, free_port

# tests/servers/oidc/server.mjs wraps `oidc-provider` (panva, tests/package.json). One instance
# is both the users' IdP (U1, U2, ... log in; the gateway's CUSTOM_JWT authorizer validates its
# JWTs via discovery) and the upstream authorization server of protected MCP servers (the
# identity service's credential providers point at it). With an RFC 8707 `resource` its access
# tokens are RS256 JWTs (typ at+jwt) with aud = the resource, sub = the user (or the client id
# for client credentials), client_id, scope, iss, exp.
#
# Ways to get tokens:
#   client_credentials_token(...)        M2M, a JWT when `resource` is given
#   user_tokens(...)                     a user's authorization-code flow (PKCE S256) over plain
#                                        HTTP (no browser): real id_token/access/refresh tokens
#   mint_jwt(oidc, sub=..., aud=...)     test-only endpoint: any claims (expired ones too), signed
#                                        with the provider's key, verifiable via its jwks_uri
#   tests/browser.py consent(...)        the same flow in headless Chromium, like a person

OIDC_SERVER = SERVERS / "oidc" / "server.mjs"
# Guards the provider's test-only API (/__test/...). Not a real secret; scan logs for it anyway.
OIDC_TEST_API_SECRET = "gh-test-oidc-api-secret-5d2a9c7e1f4b8036"

# username -> password of the provider's accounts.
OIDC_USERS: dict[str, str] = {
    "U1": "gh-test-pw-u1-3f9a1c7d2e",
    "U2": "gh-test-pw-u2-8b4e6d0a1c",
    "U3": "gh-test-pw-u3-5c2f7a9e4b",
    "U4": "gh-test-pw-u4-1d8b3e6f0a",
    "admin": "gh-test-pw-admin-7e0c4a2d9f",
}

# Clients registered by default (client_id -> metadata). redirect_uris start as a placeholder
# (a closed port); register the real one at runtime with register_oidc_client(...), e.g. the
# identity service's callbackUrl or a ReturnCatcher's URL.
OIDC_PLACEHOLDER_REDIRECT = "http://127.0.0.1:9/unregistered-callback"
OIDC_CLIENTS: dict[str, dict[str, Any]] = {
    # the identity service's OAuth client for authorization-code targets
    "gatehouse-upstream": {
        "client_secret": "gh-test-oidc-secret-upstream-4a7c1e9d3b6f2085",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    },
    # same, registered for client_secret_post (oidc-provider 9 accepts basic and post either way)
    "gatehouse-upstream-post": {
        "client_secret": "gh-test-oidc-secret-upstream-post-9e2b6d1a7c4f",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
    },
    # machine-to-machine only
    "gatehouse-m2m": {
        "client_secret": "gh-test-oidc-secret-m2m-2c8f5a0e7d1b9346",
        "grant_types": ["client_credentials"],
    },
    # the app users log in to (tokens for the gateway's inbound authorizer); no consent page
    "gatehouse-users": {
        "client_secret": "gh-test-oidc-secret-users-6b1d9f3c0a5e8274",
        "grant_types": ["authorization_code", "refresh_token"],
        "skip_consent": True,
    },
}


def default_oidc_config() -> dict[str, Any]:
    """The provider config start_oidc_provider() uses when given none (a fresh deep copy).

    Shape (all optional but port, which start_oidc_provider fills in):
      host, port, issuer (default http://127.0.0.1:<port>),
      clients: [{client_id, client_secret, redirect_uris, grant_types, response_types,
                 token_endpoint_auth_method, scope, skip_consent}],
      accounts: {username: {password, name?, email?}},
      resources: {resource URL: {scope?, audience?, accessTokenTTL?}}, allowAnyResource (true),
      resourceScope ("mcp:read mcp:write mcp:tools mcp:admin": what any resource offers),
      ttl: {AccessToken 300, ClientCredentials 300, RefreshToken 86400, IdToken 300,
            AuthorizationCode 60, Interaction 600, Session 3600, Grant 86400} (seconds, >= 1),
      rotateRefreshToken (true), alwaysConsent (true), pkceRequired (true),
      keysFile (persist the signing key across restarts), testApiSecret, accessLog (true).
    """
    clients = []
    for client_id, meta in OIDC_CLIENTS.items():
        c = {"client_id": client_id, **meta}
        if "authorization_code" in c.get("grant_types", []):
            c["redirect_uris"] = [OIDC_PLACEHOLDER_REDIRECT]
        clients.append(c)
    return {
        "clients": clients,
        "accounts": {u: {"password": pw, "name": f"Test user {u}"} for u, pw in OIDC_USERS.items()},
        "testApiSecret": OIDC_TEST_API_SECRET,
        "ttl": {"AccessToken": 300, "ClientCredentials": 300, "RefreshToken": 86400},
        "rotateRefreshToken": True,
    }


def node_binary(min_major: int = 22) -> str:
    """Node >= min_major: tests/node_modules/.bin/node (the `node` npm package, Node 22), else
    $GATEHOUSE_TEST_NODE, else `node` on PATH if it is new enough."""
    candidates = [
        os.environ.get("GATEHOUSE_TEST_NODE", ""),
        str(TESTS / "node_modules" / ".bin" / "node"),
        shutil.which("node") or "",
    ]
    seen = []
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=20).stdout
            major = int(out.strip().lstrip("v").split(".")[0])
        except (OSError, ValueError, subprocess.SubprocessError):
            continue
        seen.append(f"{c} ({out.strip()})")
        if major >= min_major:
            return c
    raise StartError(
        f"no Node.js >= {min_major} found (oidc-provider 9 needs it); tried: {', '.join(seen) or 'nothing'}. "
        "Run `npm ci --prefix tests` (it installs Node 22 from the npm package `node`)."
    )


def _http() -> Any:
    import httpx

    return httpx.Client(trust_env=False, timeout=30.0)


def start_oidc_provider(
    config: Mapping[str, Any] | None = None,
    *,
    keys_file: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """Start tests/servers/oidc/server.mjs (oidc-provider) and wait for its discovery document.

    config: see default_oidc_config() (used when None). `port` defaults to a free port, `host`
    to 127.0.0.1, `testApiSecret` to OIDC_TEST_API_SECRET; keys_file sets `keysFile`.
    The config (it holds client secrets and passwords) goes to a private temp file, never argv.

    Returns a Proc with `.url` = `.issuer` = http://127.0.0.1:<port> (no trailing slash),
    `.metadata` (the discovery document), `.config` (the effective config),
    `.test_api_secret`, `.clients` ({client_id: metadata}), `.users` ({username: password}).
    """
    cfg: dict[str, Any] = json_roundtrip(config if config is not None else default_oidc_config())
    port = int(cfg.setdefault("port", free_port()))
    cfg.setdefault("host", LOCALHOST)
    cfg.setdefault("testApiSecret", OIDC_TEST_API_SECRET)
    if keys_file is not None:
        cfg["keysFile"] = str(keys_file)
    issuer = cfg.get("issuer") or f"http://{cfg['host']}:{port}"
    cfg_dir = Path(tempfile.mkdtemp(prefix="gatehouse-oidc-"))
    atexit.register(shutil.rmtree, cfg_dir, True)
    cfg_path = cfg_dir / "config.json"
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    entry_ok = (TESTS / "node_modules" / "oidc-provider" / "package.json").exists()
    if not entry_ok:
        raise StartError("tests/node_modules/oidc-provider missing: run `npm ci --prefix tests`")
    proc = Proc(
        "oidc-provider",
        [node_binary(), str(OIDC_SERVER), str(cfg_path)],
        {"NODE_ENV": "test", "DEBUG": ""},
        cwd=OIDC_SERVER.parent,
        port=port,
        url=issuer,
        health_url=f"{issuer}/.well-known/openid-configuration",
        role="upstream",
    )
    proc.issuer = issuer  # type: ignore[attr-defined]
    proc.config = cfg  # type: ignore[attr-defined]
    proc.config_path = cfg_path  # type: ignore[attr-defined]
    proc.test_api_secret = cfg.get("testApiSecret")  # type: ignore[attr-defined]
    proc.clients = {c["client_id"]: c for c in cfg.get("clients", [])}  # type: ignore[attr-defined]
    proc.users = {u: a.get("password") for u, a in cfg.get("accounts", {}).items()}  # type: ignore[attr-defined]
    proc.start()
    proc.wait_ready(timeout=timeout)
    proc.metadata = oidc_discovery(issuer)  # type: ignore[attr-defined]
    return proc


def json_roundtrip(value: Any) -> Any:
    """A deep copy of JSON-able data."""
    return json.loads(json.dumps(value))


def oidc_secrets(oidc: Proc) -> list[str]:
    """Every secret in a provider's config (client secrets, passwords, the test API secret):
    what a log scan should look for besides tokens."""
    cfg = getattr(oidc, "config", {})
    out = [c["client_secret"] for c in cfg.get("clients", []) if c.get("client_secret")]
    out += [a["password"] for a in cfg.get("accounts", {}).values() if a.get("password")]
    if cfg.get("testApiSecret"):
        out.append(cfg["testApiSecret"])
    return out


def oidc_discovery(issuer: str) -> dict[str, Any]:
    """GET <issuer>/.well-known/openid-configuration."""
    with _http() as http:
        r = http.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        r.raise_for_status()
        return dict(r.json())


def _issuer_of(oidc: Proc | str) -> str:
    return oidc if isinstance(oidc, str) else str(oidc.url)


def _test_api(oidc: Proc, method: str, path: str, body: Any = None) -> dict[str, Any]:
    secret = getattr(oidc, "test_api_secret", None) or OIDC_TEST_API_SECRET
    with _http() as http:
        r = http.request(
            method, f"{oidc.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        if r.status_code >= 400:
            raise RuntimeError(f"oidc test api {method} {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json())


def register_oidc_client(
    oidc: Proc,
    client_id: str,
    *,
    client_secret: str | None = None,
    redirect_uris: Sequence[str] = (),
    **metadata: Any,
) -> dict[str, Any]:
    """Register or replace a client at runtime (test API). Unspecified metadata is taken from
    the client of that id in the provider's config, if any (so `register_oidc_client(oidc,
    "gatehouse-upstream", redirect_uris=[callback_url])` just adds the callback).
    Returns the registered metadata (with client_secret)."""
    known: dict[str, Any] = dict(getattr(oidc, "clients", {}).get(client_id, {}))
    meta = {**known, **metadata, "client_id": client_id}
    if client_secret is not None:
        meta["client_secret"] = client_secret
    if redirect_uris:
        meta["redirect_uris"] = list(redirect_uris)
    _test_api(oidc, "PUT", f"/__test/clients/{client_id}", meta)
    getattr(oidc, "clients", {})[client_id] = meta
    return meta


def update_oidc_settings(oidc: Proc, **settings: Any) -> dict[str, Any]:
    """Change the running provider's settings: ttl={...} (merged), rotateRefreshToken,
    alwaysConsent, pkceRequired, allowAnyResource, resourceScope, resources={...} (merged)."""
    return _test_api(oidc, "PATCH", "/__test/settings", settings)
