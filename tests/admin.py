"""A thin client of the gateway admin API for tests: create things, wait for a status."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx

from gatehouse_contracts import lifecycle

# the statuses a sync leaves a target in: where waiting for one ends
TERMINAL = set(lifecycle.AT_REST)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def target_body(
    name: str, endpoint: str, *, inline_tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    server: dict[str, Any] = {"endpoint": endpoint}
    if inline_tools is not None:
        server["mcpToolSchema"] = {"inlinePayload": json.dumps({"tools": inline_tools})}
    return {
        "name": name,
        "targetConfiguration": {"mcp": {"mcpServer": server}},
        "credentialProviderConfigurations": [{"credentialProviderType": "NONE"}],
    }


def user_target_body(
    name: str,
    endpoint: str,
    provider: str,
    return_url: str,
    *,
    inline_tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An authorization-code target: each user's token from ``provider`` (consent at tool-call time)."""
    body = target_body(name, endpoint, inline_tools=inline_tools)
    oauth = {
        "providerName": provider,
        "scopes": ["mcp:tools"],
        "grantType": "AUTHORIZATION_CODE",
        "defaultReturnUrl": return_url,
    }
    body["credentialProviderConfigurations"] = [
        {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
    ]
    return body


def offline_provider_body(name: str) -> dict[str, Any]:
    """An identity credential provider whose authorization server is never contacted (its
    endpoints are given, not discovered): enough for sessions to start and for sealed secrets."""
    metadata = {
        "issuer": "http://127.0.0.1:1/as",
        "authorizationEndpoint": "http://127.0.0.1:1/as/authorize",
        "tokenEndpoint": "http://127.0.0.1:1/as/token",
    }
    return {
        "name": name,
        "credentialProviderVendor": "CustomOauth2",
        "oauth2ProviderConfigInput": {
            "customOauth2ProviderConfig": {
                "oauthDiscovery": {"authorizationServerMetadata": metadata},
                "clientId": "c",
                "clientSecret": f"gh-test-{uuid.uuid4().hex}",
            }
        },
    }


async def oidc_credential_provider(stack: Any, oidc: Any) -> dict[str, Any]:
    """A credential provider at the test oidc-provider (discovery), with a fresh client registered
    there for identity's callback URL; the provider as identity answered (``name``, ``callbackUrl``)."""
    import secrets

    from harness import register_oidc_client, remember_secret

    client_id, secret = f"gh-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
    remember_secret(secret)
    async with httpx.AsyncClient(base_url=stack.identity_url, headers=stack.admin_headers) as identity:
        r = await identity.post(
            "/identities/CreateOauth2CredentialProvider",
            json={
                "name": unique("as"),
                "credentialProviderVendor": "CustomOauth2",
                "oauth2ProviderConfigInput": {
                    "customOauth2ProviderConfig": {
                        "oauthDiscovery": {"discoveryUrl": f"{oidc.url}/.well-known/openid-configuration"},
                        "clientId": client_id,
                        "clientSecret": secret,
                    }
                },
            },
        )
        assert r.status_code == 201, r.text
    provider: dict[str, Any] = r.json()
    register_oidc_client(oidc, client_id, client_secret=secret, redirect_uris=[provider["callbackUrl"]])
    return provider


class Admin:
    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def create_gateway(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        r = await self.http.post("/gateways", json={"name": name or unique("gw"), **fields})
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def create_jwt_gateway(self, issuer_url: str, audience: str, **fields: Any) -> dict[str, Any]:
        """A CUSTOM_JWT gateway whose users' JWTs come from ``issuer_url`` for ``audience``."""
        authorizer = {
            "discoveryUrl": f"{issuer_url}/.well-known/openid-configuration",
            "allowedAudience": [audience],
        }
        return await self.create_gateway(
            authorizerType="CUSTOM_JWT", authorizerConfiguration={"customJWTAuthorizer": authorizer}, **fields
        )

    async def create_target(self, gateway_id: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(f"/gateways/{gateway_id}/targets", json=body)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def target(self, gateway_id: str, target_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/gateways/{gateway_id}/targets/{target_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def wait_status(
        self, gateway_id: str, target_id: str, *, statuses: set[str] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll until the target is in one of ``statuses`` (default: any terminal status)."""
        wanted = statuses or TERMINAL
        deadline = time.monotonic() + timeout
        while True:
            target = await self.target(gateway_id, target_id)
            if target["status"] in wanted:
                return target
            if time.monotonic() > deadline:
                raise AssertionError(f"target stuck in {target['status']}: {target}")
            await asyncio.sleep(0.1)

    async def ready_target(self, gateway_id: str, name: str, endpoint: str) -> dict[str, Any]:
        """A synced open target, READY and served by this admin's gateway replica."""
        created = await self.create_target(gateway_id, target_body(name, endpoint))
        target = await self.wait_status(gateway_id, created["targetId"])
        assert target["status"] == lifecycle.READY, target
        await self.wait_served(gateway_id, name)
        return target

    async def wait_served(self, gateway_id: str, target_name: str, timeout: float = 15.0) -> None:
        """Until the replica's tools/list (open gateways) shows the target's tools: READY is stored
        before each replica has applied the event that says so, which a loaded machine can delay."""
        gateway = (await self.http.get(f"/gateways/{gateway_id}")).json()
        if gateway.get("authorizerType") != "NONE":
            return
        from rawmcp import open_session, rpc

        url = f"/gateways/{gateway_id}/mcp"
        session = await open_session(self.http, url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tools = (await rpc(self.http, url, session, "tools/list"))["result"]["tools"]
            if any(t["name"].startswith(f"{target_name}___") for t in tools):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"target {target_name!r} is READY but not in tools/list after {timeout}s")
