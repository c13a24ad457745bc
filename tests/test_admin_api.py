"""The admin API refuses bad input with a clear 4xx and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from admin import Admin, target_body, unique


async def _snapshot(admin: Admin, gateway_id: str) -> tuple[Any, Any]:
    gateways = (await admin.http.get("/gateways", params={"maxResults": 1000})).json()
    targets = (await admin.http.get(f"/gateways/{gateway_id}/targets")).json()
    return gateways, targets


async def test_missing_or_wrong_admin_token_is_401(stack: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": stack.admin_token}):
            r = await http.post("/gateways", json={"name": unique("gw")}, headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "UnauthorizedException"
            assert (await http.get("/gateways", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"name": "has_underscore"}, "name"),
        ({"name": "-leading"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({}, "name"),
        ({"name": "ok", "surprise": 1}, "surprise"),
        ({"name": "ok", "authorizerType": "SOMETHING"}, "authorizerType"),
        ({"name": "ok", "authorizerType": "CUSTOM_JWT"}, "customJWTAuthorizer"),
        (
            {
                "name": "ok",
                "authorizerType": "CUSTOM_JWT",
                "authorizerConfiguration": {
                    "customJWTAuthorizer": {
                        "discoveryUrl": "http://127.0.0.1:9/.well-known/openid-configuration",
                        "allowedAudience": ["x"],
                    }
                },
            },
            "discoveryUrl",
        ),
        (
            {"name": "ok", "protocolConfiguration": {"mcp": {"supportedVersions": ["1.0"]}}},
            "supportedVersions",
        ),
    ],
)
async def test_bad_gateway_bodies(stack: Any, body: dict[str, Any], fragment: str) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        before = (await admin.http.get("/gateways", params={"maxResults": 1000})).json()
        r = await admin.http.post("/gateways", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "ValidationException"
        assert fragment in r.json()["error"]["message"]
        assert (await admin.http.get("/gateways", params={"maxResults": 1000})).json() == before


async def test_bad_target_bodies_change_nothing(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        existing = await admin.ready_target(gid, "keep", sdk_server.url)
        before = await _snapshot(admin, gid)
        bad_inline = target_body("inl", sdk_server.url)
        bad_inline["targetConfiguration"]["mcp"]["mcpServer"]["mcpToolSchema"] = {
            "inlinePayload": "{not json"
        }
        bad_tool = target_body("inl", sdk_server.url, inline_tools=[{"name": "bad name!", "inputSchema": {}}])
        cases = [
            (target_body("bad_name", sdk_server.url), 400),
            (target_body("x", "ftp://example.com/mcp"), 400),
            (target_body("x", "not a url"), 400),
            ({"name": "nocfg"}, 400),
            ({**target_body("two", sdk_server.url), "credentialProviderConfigurations": []}, 400),
            (bad_inline, 400),
            (bad_tool, 400),
            (target_body("keep", sdk_server.url), 409),
        ]
        for body, status in cases:
            r = await admin.http.post(f"/gateways/{gid}/targets", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["error"]["message"]
        r = await admin.http.post(
            f"/gateways/{gid}/targets",
            content=b'{"name": "x", ',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
        r = await admin.http.post(f"/gateways/{gid}/targets", content=b"x" * (1024 * 1024 + 10))
        assert r.status_code == 413
        r = await admin.http.put(f"/gateways/{gid}/targets/{existing['targetId']}", json={"name": "keep"})
        assert r.status_code == 400
        assert await _snapshot(admin, gid) == before


async def test_unknown_ids_are_404(stack: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        gid = gateway["gatewayId"]
        for method, path in [
            ("GET", "/gateways/nope-0000000000"),
            ("DELETE", "/gateways/nope-0000000000"),
            ("GET", "/gateways/nope-0000000000/targets"),
            ("GET", f"/gateways/{gid}/targets/NOPE"),
            ("DELETE", f"/gateways/{gid}/targets/NOPE"),
        ]:
            r = await admin.http.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "ResourceNotFoundException"
        r = await admin.http.put(f"/gateways/{gid}/synchronizeTargets", json={"targetIdList": ["NOPE"]})
        assert r.status_code == 404


async def test_gateway_crud_pagination_and_workload_identity(stack: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        made = [await admin.create_gateway(unique("page")) for _ in range(3)]
        got = (await admin.http.get(f"/gateways/{made[0]['gatewayId']}/")).json()  # trailing slash works
        assert got["workloadIdentityDetails"] == {"workloadIdentityName": made[0]["gatewayId"]}
        assert got["gatewayUrl"].endswith(f"/gateways/{made[0]['gatewayId']}/mcp")
        seen, token = [], None
        while True:
            params: dict[str, Any] = {"maxResults": 2, **({"nextToken": token} if token else {})}
            page = (await admin.http.get("/gateways", params=params)).json()
            assert len(page["items"]) <= 2
            seen += [g["gatewayId"] for g in page["items"]]
            token = page["nextToken"]
            if not token:
                break
        assert {g["gatewayId"] for g in made} <= set(seen) and len(seen) == len(set(seen))
        assert (await admin.http.get("/gateways", params={"maxResults": 0})).status_code == 400
        assert (await admin.http.get("/gateways", params={"nextToken": "%%%"})).status_code == 400

        # the workload identity exists in identity, made through the RPC
        async with httpx.AsyncClient(base_url=stack.identity_url, headers=stack.admin_headers) as identity:
            r = await identity.post("/identities/GetWorkloadIdentity", json={"name": made[0]["gatewayId"]})
            assert r.status_code == 200, r.text
            renamed = await admin.http.put(
                f"/gateways/{made[0]['gatewayId']}", json={"name": unique("renamed")}
            )
            assert renamed.status_code == 202
            assert (await admin.http.delete(f"/gateways/{made[0]['gatewayId']}")).status_code == 202
            assert (await admin.http.get(f"/gateways/{made[0]['gatewayId']}")).status_code == 404
            r = await identity.post("/identities/GetWorkloadIdentity", json={"name": made[0]["gatewayId"]})
            assert r.status_code == 404


async def test_gateway_with_targets_cannot_be_deleted(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        await admin.create_target(gateway["gatewayId"], target_body("t", sdk_server.url))
        r = await admin.http.delete(f"/gateways/{gateway['gatewayId']}")
        assert r.status_code == 409


async def test_identity_workload_identities_over_http(stack: Any) -> None:
    name = unique("wl")
    async with httpx.AsyncClient(base_url=stack.identity_url, headers=stack.admin_headers) as identity:
        r = await identity.post(
            "/identities/CreateWorkloadIdentity",
            json={"name": name, "allowedResourceOauth2ReturnUrls": ["https://app.example/cb"]},
        )
        assert r.status_code == 201, r.text
        assert (
            await identity.post("/identities/CreateWorkloadIdentity", json={"name": name})
        ).status_code == 409
        bad = await identity.post(
            "/identities/UpdateWorkloadIdentity",
            json={"name": name, "allowedResourceOauth2ReturnUrls": ["javascript:alert(1)"]},
        )
        assert bad.status_code == 400
        r = await identity.post(
            "/identities/UpdateWorkloadIdentity",
            json={"name": name, "allowedResourceOauth2ReturnUrls": ["https://b.example/cb"]},
        )
        assert r.json()["allowedResourceOauth2ReturnUrls"] == ["https://b.example/cb"]
        listed = await identity.post("/identities/ListWorkloadIdentities", json={"maxResults": 1000})
        assert name in [w["name"] for w in listed.json()["items"]]
        assert (
            await identity.post("/identities/DeleteWorkloadIdentity", json={"name": name})
        ).status_code == 200
        assert (
            await identity.post("/identities/GetWorkloadIdentity", json={"name": name})
        ).status_code == 404
        r = await identity.post(
            "/identities/GetWorkloadIdentity", json={"name": name}, headers={"Authorization": "Bearer nope"}
        )
        assert r.status_code == 401


async def test_admin_jwts_from_the_configured_issuer(stack: Any, oidc_provider: Any) -> None:
    import harness

    admin_jwt = {
        "ADMIN_JWT_DISCOVERY_URL": f"{oidc_provider.url}/.well-known/openid-configuration",
        "ADMIN_JWT_AUDIENCE": "gatehouse-admin",
        "ADMIN_JWT_CLAIM": "roles",
        "ADMIN_JWT_VALUE": "gatehouse-admin",
    }
    gateway = stack.start_gateway_replica(**admin_jwt)
    identity = harness.start_service("identity", {**stack.env, **admin_jwt}, label="identity-admin-jwt")
    try:
        good = harness.mint_jwt(oidc_provider, sub="ops", aud="gatehouse-admin", roles=["gatehouse-admin"])
        no_role = harness.mint_jwt(oidc_provider, sub="ops", aud="gatehouse-admin", roles=["viewer"])
        other_aud = harness.mint_jwt(oidc_provider, sub="ops", aud="elsewhere", roles=["gatehouse-admin"])
        expired = harness.mint_jwt(
            oidc_provider, sub="ops", aud="gatehouse-admin", roles=["gatehouse-admin"], ttl=-300
        )
        async with httpx.AsyncClient() as http:
            for token, status in (
                (good, 202),
                (no_role, 401),
                (other_aud, 401),
                (expired, 401),
                ("x.y.z", 401),
            ):
                r = await http.post(
                    f"{gateway.url}/gateways",
                    json={"name": unique("jwt")},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == status, (r.status_code, r.text)
            r = await http.post(
                f"{stack.gateway_url}/gateways",
                json={"name": unique("jwt")},
                headers={"Authorization": f"Bearer {good}"},
            )
            assert r.status_code == 401  # a gateway without ADMIN_JWT_* settings takes only the static token
            for token, status in ((good, 200), (no_role, 401)):
                r = await http.post(
                    f"{identity.url}/identities/ListWorkloadIdentities",
                    json={},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == status, r.text
    finally:
        identity.stop()


def test_admin_jwts_without_an_audience_refuse_to_start(stack: Any, oidc_provider: Any) -> None:
    """Any token of the admin issuer (made for another application, with the same role) would
    otherwise open the admin APIs: gateway and identity refuse to start, naming the setting."""
    import harness

    env = {**stack.env, "ADMIN_JWT_DISCOVERY_URL": f"{oidc_provider.url}/.well-known/openid-configuration"}
    for name in ("gateway", "identity"):
        proc = harness.start_service(name, env, label=f"{name}-no-audience", wait=False)
        try:
            assert proc.popen is not None and proc.popen.wait(timeout=60) != 0
            assert "ADMIN_JWT_AUDIENCE must be set when ADMIN_JWT_DISCOVERY_URL is" in proc.log_text()
        finally:
            proc.stop()
