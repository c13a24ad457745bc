"""Set up the demo through the public admin APIs, idempotently, then print what to do next.

    GATEHOUSE_ADMIN_TOKEN=... DEMO_IDP_ADMIN_SECRET=... python demo/provision.py [--state FILE]

Run by `make demo` (scripts/demo.sh) and by compose's `demo-setup` container, after the stack,
the demo identity provider and the two demo MCP servers are up:

1. the provider's clients (its admin API, DEMO_IDP_ADMIN_SECRET): the public CLI client users get
   tokens with, the gateway's login client, identity's client for the notes server;
2. identity: the OAuth credential provider `demo-idp` for that client;
3. gateway: the CUSTOM_JWT gateway `demo` (users' JWTs of the demo provider for the gateway's MCP
   URL; a loginClient, so identity signs in whoever consents: verified-user consent, no app
   needed), an open target `toolbox` and an authorization-code target `notes` (its tools given up
   front, since listing them needs a user's token);
4. waits until alice sees both targets' tools through the gateway, then prints the box.

A second run finds the provider and the gateway by name and creates only what is missing. The
secrets of the two confidential clients are made on the first run and kept in --state (identity
keeps them sealed; the provider forgets its clients on restart, so they are registered each run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    CLI_CLIENT,
    CLI_REDIRECT,
    GATEWAY_NAME,
    LOGIN_CLIENT,
    NOTES_SCOPE,
    PROVIDER_NAME,
    UPSTREAM_CLIENT,
    USERS,
    Demo,
    http_client,
    mcp_client,
    user_token,
)

READY_TIMEOUT = 60.0  # seconds for a target to sync


class SetupError(RuntimeError):
    pass


def _ok(r: httpx.Response, what: str, *codes: int) -> Any:
    if r.status_code not in (codes or (200,)):
        raise SetupError(f"{what}: HTTP {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def load_state(path: Path) -> tuple[dict[str, str], bool]:
    """The confidential clients' secrets, made once (file mode 0600); and whether just now."""
    if path.exists():
        return dict(json.loads(path.read_text())), False
    state = {
        "loginClientSecret": secrets.token_urlsafe(32),
        "upstreamClientSecret": secrets.token_urlsafe(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    return state, True


def register_client(demo: Demo, admin_secret: str, client_id: str, **metadata: Any) -> None:
    """PUT a client at the demo provider (tests/servers/oidc/server.mjs's admin API)."""
    with http_client(headers={"Authorization": f"Bearer {admin_secret}"}) as http:
        r = http.put(
            f"{demo.idp_internal}/__test/clients/{client_id}", json={"client_id": client_id, **metadata}
        )
        _ok(r, f"registering client {client_id} at the demo identity provider")


def ensure_provider(demo: Demo, identity: httpx.Client, secret: str, *, new_secret: bool) -> dict[str, Any]:
    """Creates the provider, or, when it exists and the secret is new (the state file was lost,
    the database kept), gives it the new secret (same client, so its users' grants stay)."""
    body = {
        "name": PROVIDER_NAME,
        "credentialProviderVendor": "CustomOauth2",
        "oauth2ProviderConfigInput": {
            "customOauth2ProviderConfig": {
                "oauthDiscovery": {"discoveryUrl": f"{demo.idp_internal}/.well-known/openid-configuration"},
                "clientId": UPSTREAM_CLIENT,
                "clientSecret": secret,
            }
        },
    }
    r = identity.post("/identities/GetOauth2CredentialProvider", json={"name": PROVIDER_NAME})
    if r.status_code == 200 and not new_secret:
        return dict(r.json())
    if r.status_code == 200:
        r = identity.post("/identities/UpdateOauth2CredentialProvider", json=body)
        return dict(_ok(r, "giving the demo credential provider its new secret"))
    _ok(r, "looking up the demo credential provider", 404)
    r = identity.post("/identities/CreateOauth2CredentialProvider", json=body)
    return dict(_ok(r, "creating the demo credential provider", 201))


def _find(http: httpx.Client, path: str, name: str) -> dict[str, Any] | None:
    token: str | None = None
    while True:
        page = _ok(
            http.get(path, params={"maxResults": 1000, **({"nextToken": token} if token else {})}), path
        )
        for item in page["items"]:
            if item["name"] == name:
                return dict(item)
        token = page.get("nextToken")
        if not token:
            return None


def ensure_gateway(
    demo: Demo, gateway: httpx.Client, login_secret: str, *, new_secret: bool
) -> dict[str, Any]:
    """Creates the gateway; an existing one gets a new login client secret when there is one."""

    def config(audience: str) -> dict[str, Any]:
        jwt = {
            "discoveryUrl": f"{demo.idp_internal}/.well-known/openid-configuration",
            "allowedAudience": [audience],
            "loginClient": {"clientId": LOGIN_CLIENT, "clientSecret": login_secret},
        }
        return {
            "name": GATEWAY_NAME,
            "authorizerType": "CUSTOM_JWT",
            "authorizerConfiguration": {"customJWTAuthorizer": jwt},
        }

    found = _find(gateway, "/gateways", GATEWAY_NAME)
    if found is not None and not new_secret:
        return dict(_ok(gateway.get(f"/gateways/{found['gatewayId']}"), "reading the demo gateway"))
    if found is None:
        # Users' tokens are for the gateway's MCP URL (RFC 8707 resource), known once it exists.
        r = gateway.post("/gateways", json=config(f"{demo.gateway}/unset"))
        found = _ok(r, "creating the demo gateway", 202)
    updated = gateway.put(f"/gateways/{found['gatewayId']}", json=config(found["gatewayUrl"]))
    return dict(_ok(updated, "configuring the demo gateway", 202))


def notes_tools(demo: Demo) -> list[dict[str, Any]]:
    from servers import JwksVerifier, build_notes, tool_list

    return tool_list(build_notes(JwksVerifier(demo.idp, demo.notes, f"{demo.idp}/jwks"), demo.notes))


def target_bodies(demo: Demo) -> dict[str, dict[str, Any]]:
    oauth = {"providerName": PROVIDER_NAME, "scopes": [NOTES_SCOPE], "grantType": "AUTHORIZATION_CODE"}
    return {
        "toolbox": {
            "name": "toolbox",
            "description": "open demo MCP server: dice, word count, time",
            "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": demo.toolbox}}},
            "credentialProviderConfigurations": [{"credentialProviderType": "NONE"}],
        },
        "notes": {
            "name": "notes",
            "description": "OAuth-protected demo MCP server: each user's own notes",
            "targetConfiguration": {
                "mcp": {
                    "mcpServer": {
                        "endpoint": demo.notes,
                        "mcpToolSchema": {"inlinePayload": json.dumps({"tools": notes_tools(demo)})},
                    }
                }
            },
            "credentialProviderConfigurations": [
                {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
            ],
        },
    }


def ensure_targets(demo: Demo, gateway: httpx.Client, gateway_id: str) -> None:
    path = f"/gateways/{gateway_id}/targets"
    ids = {}
    for name, body in target_bodies(demo).items():
        found = _find(gateway, path, name)
        ids[name] = (
            found["targetId"]
            if found
            else _ok(gateway.post(path, json=body), f"creating {name}", 202)["targetId"]
        )
    deadline = time.monotonic() + READY_TIMEOUT
    for name, target_id in ids.items():
        while True:
            target = _ok(gateway.get(f"{path}/{target_id}"), f"reading target {name}")
            if target["status"] == "READY":
                break
            if (
                target["status"] not in ("CREATING", "UPDATING", "SYNCHRONIZING")
                or time.monotonic() > deadline
            ):
                reasons = "; ".join(target.get("statusReasons") or [])
                raise SetupError(f"target {name} is {target['status']}: {reasons or 'no reason given'}")
            time.sleep(0.2)


async def _served_tools(url: str, token: str) -> list[str]:
    async with mcp_client(url, token) as client:
        return [t.name for t in (await client.list_tools()).tools]


def wait_served(demo: Demo, gateway_url: str) -> tuple[list[str], str]:
    """Until a demo user sees every target's tools through the gateway (READY is stored just before
    the gateway applies the event that says so): the whole chain works before the box says so.
    Returns the tools and alice's token."""
    token = user_token(demo.idp, "alice", gateway_url)
    deadline = time.monotonic() + 15
    while True:
        tools = asyncio.run(_served_tools(demo.reach(gateway_url), token))
        if {t.split("___")[0] for t in tools} >= {"toolbox", "notes"} or time.monotonic() > deadline:
            return tools, token
        time.sleep(0.2)


def box(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    bar = "+" + "-" * (width + 2) + "+"
    return "\n".join([bar, *(f"| {line.ljust(width)} |" for line in lines), bar])


def instructions(gateway_url: str, admin_token: str, python: str, alice_token: str) -> str:
    """What `make demo` ends with; tests/test_demo.py does exactly what it says."""
    users = ", ".join(f"{u} / {p}" for u, p in USERS.items())
    client_config = {
        "mcpServers": {
            "gatehouse-demo": {
                "type": "http",
                "url": gateway_url,
                "headers": {"Authorization": f"Bearer {alice_token}"},
            }
        }
    }
    lines = [
        "Gatehouse demo is up.  Ctrl-C stops everything.",
        "",
        f"MCP URL      {gateway_url}",
        f"admin token  {admin_token}",
        f"demo users   {users}",
        "",
        "1. Call a tool as alice with the official MCP SDK client (it lists the tools first):",
        f"     export MCP={gateway_url}",
        f'     {python} demo/call.py alice $MCP notes___add_note \'{{"text": "hello"}}\'',
        "2. notes acts for each user: open the URL it prints, sign in as alice, click Allow.",
        '3. Run the same command again: "note 1 added for alice". (bob has his own notes.)',
        "",
        f"A user's token for any MCP client:  {python} demo/user_token.py alice $MCP",
    ]
    config = json.dumps(client_config, indent=2)
    return f"{box(lines)}\nMCP client configuration (alice, token valid 1 h):\n{config}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state", type=Path, default=Path(".data/demo/state.json"), help="the clients' secrets")
    p.add_argument("--python", default=".venv/bin/python", help="the python the printed commands use")
    args = p.parse_args(argv)
    demo = Demo.from_env()
    admin_token = os.environ.get("GATEHOUSE_ADMIN_TOKEN", "")
    idp_secret = os.environ.get("DEMO_IDP_ADMIN_SECRET", "")
    if not admin_token or not idp_secret:
        sys.exit("provision: GATEHOUSE_ADMIN_TOKEN and DEMO_IDP_ADMIN_SECRET must be set")
    state, new_secrets = load_state(args.state)
    admin = {"Authorization": f"Bearer {admin_token}"}
    try:
        register_client(
            demo,
            idp_secret,
            CLI_CLIENT,
            token_endpoint_auth_method="none",  # noqa: S106 - a public client: no secret
            grant_types=["authorization_code"],
            redirect_uris=[CLI_REDIRECT],
            skip_consent=True,
        )
        register_client(
            demo,
            idp_secret,
            LOGIN_CLIENT,
            client_secret=state["loginClientSecret"],
            grant_types=["authorization_code"],
            redirect_uris=[f"{demo.identity_public}/identities/oauth2/login/callback"],
            skip_consent=True,
        )
        with http_client(base_url=demo.identity, headers=admin) as identity:
            provider = ensure_provider(demo, identity, state["upstreamClientSecret"], new_secret=new_secrets)
        register_client(
            demo,
            idp_secret,
            UPSTREAM_CLIENT,
            client_secret=state["upstreamClientSecret"],
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[provider["callbackUrl"]],
        )
        with http_client(base_url=demo.gateway, headers=admin) as gateway:
            gw = ensure_gateway(demo, gateway, state["loginClientSecret"], new_secret=new_secrets)
            ensure_targets(demo, gateway, gw["gatewayId"])
        tools, alice_token = wait_served(demo, gw["gatewayUrl"])
    except (SetupError, RuntimeError, httpx.HTTPError) as e:
        hint = ""
        if "must be an https URL" in str(e):  # Gatehouse's network guard, outside make demo
            hint = (
                "\nThe demo talks plain http between containers: start it with "
                "GATEHOUSE_ALLOW_INSECURE_HTTP=true docker compose --profile demo up"
            )
        sys.exit(f"provision: {e}{hint}")
    print(f"demo gateway {gw['gatewayId']}: {len(tools)} tools: {', '.join(sorted(tools))}", flush=True)
    print(instructions(gw["gatewayUrl"], admin_token, args.python, alice_token), flush=True)


if __name__ == "__main__":
    main()
