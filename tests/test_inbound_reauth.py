"""A gateway remembers which inbound tokens it validated, but only for the authorizer it checked them
against: once an admin narrows the authorizer, a token already seen is checked again at once, on
every replica (they hear gateway.updated)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import harness
import httpx
import nats
from admin import Admin, unique
from rawmcp import initialize, post

from gatehouse_contracts.subjects import EVENTS_PREFIX


def _authorizer(oidc: Any, audience: str) -> dict[str, Any]:
    return {
        "authorizerType": "CUSTOM_JWT",
        "authorizerConfiguration": {
            "customJWTAuthorizer": {
                "discoveryUrl": f"{oidc.url}/.well-known/openid-configuration",
                "allowedAudience": [audience],
            }
        },
    }


async def _ping_until(http: httpx.AsyncClient, url: str, session: str, token: str, wanted: int) -> int:
    """A replica applies a catalog event a moment after it arrives (a MongoDB read): try for 5 s."""
    for _ in range(50):
        if (status := await _ping(http, url, session, token)) == wanted:
            break
        await asyncio.sleep(0.1)
    return status


async def _ping(http: httpx.AsyncClient, url: str, session: str, token: str) -> int:
    r = await post(
        http,
        url,
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        session=session,
        headers={"Authorization": f"Bearer {token}"},
    )
    return r.status_code


async def test_a_narrowed_authorizer_refuses_a_token_already_accepted(stack: Any, oidc_provider: Any) -> None:
    old, new = (f"https://gatehouse.test/{uuid.uuid4().hex[:8]}" for _ in range(2))
    replica = stack.start_gateway_replica()
    bus = await nats.connect(harness.nats_admin_url(stack.nats_url))
    try:
        async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
            name = unique("reauth")
            gateway = await admin.create_gateway(name, **_authorizer(oidc_provider, old))
            gid = gateway["gatewayId"]
            urls = [gateway["gatewayUrl"], f"{replica.url}/gateways/{gid}/mcp"]
            token = harness.user_tokens(oidc_provider, "U1", resource=old)["access_token"]
            r = await post(http, urls[0], initialize(), headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            session = r.headers["mcp-session-id"]
            for url in urls:  # accepted (and remembered) on both replicas
                assert await _ping_until(http, url, session, token, 200) == 200

            updated = asyncio.Event()

            async def on_updated(msg: Any) -> None:
                if gid.encode() in msg.data:
                    updated.set()

            await bus.subscribe(f"{EVENTS_PREFIX}.gateway.updated", cb=on_updated)
            r = await admin.http.put(
                f"/gateways/{gid}", json={"name": name, **_authorizer(oidc_provider, new)}
            )
            assert r.status_code == 202, r.text
            # the replica that took the PUT refuses at once
            assert await _ping(http, urls[0], session, token) == 401
            await asyncio.wait_for(updated.wait(), 10)
            # the other one as soon as it has applied the event
            assert await _ping_until(http, urls[1], session, token, 401) == 401
            # a token for the new audience goes on, in the same session
            fresh = harness.user_tokens(oidc_provider, "U1", resource=new)["access_token"]
            for url in urls:
                assert await _ping(http, url, session, fresh) == 200
            assert (await admin.http.delete(f"/gateways/{gid}")).status_code == 202
    finally:
        await bus.close()
        replica.stop()
