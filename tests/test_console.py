"""The web console (services/console) in headless Chromium against the real stack: every page loads
without a console error; an operator signs in with the admin token, adds a target and watches it turn
READY; a user signs in at the gateway's issuer, connects a target (consent in the browser), sees it
connected, disconnects it (revoked at identity and at the provider) and the next tool call asks for
consent again (-32042); a form posted without its CSRF token is refused and changes nothing.

GATEHOUSE_CONSOLE_SCREENSHOTS=1 also writes the main pages to docs/console/*.png.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import browser
import harness
import httpx
import pytest
from admin import Admin, oidc_credential_provider, unique
from harness import mcp_client
from mcp import MCPError

pytestmark = pytest.mark.skipif(
    not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
)

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
TOOL = [{"name": "whoami", "description": "who the upstream sees", "inputSchema": {"type": "object"}}]


@dataclass
class World:
    stack: Any
    oidc: Any
    console: Any
    upstream: Any
    provider: str
    gateway: dict[str, Any]
    audience: str
    target: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def user_jwt(self, user: str) -> str:
        return harness.user_tokens(self.oidc, user, resource=self.audience)["access_token"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def world(stack: Any, oidc_provider: Any, run_id: str) -> AsyncIterator[World]:
    upstream = harness.start_sdk_server(jwt_issuer=oidc_provider.url)
    discovery = f"{oidc_provider.url}/.well-known/openid-configuration"
    provider = await oidc_credential_provider(stack, oidc_provider)
    # the console's own client at the users' issuer
    port = harness.free_port()
    console_url = f"http://127.0.0.1:{port}"
    console_client, console_secret = f"gh-console-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(24)
    harness.register_oidc_client(
        oidc_provider,
        console_client,
        client_secret=console_secret,
        redirect_uris=[f"{console_url}/login/callback"],
        grant_types=["authorization_code", "refresh_token"],
        skip_consent=True,
    )
    harness.remember_secret(console_secret)
    audit = harness.start_service(
        "audit",
        {
            "NATS_URL": stack.nats_url,
            "MONGODB_URL": stack.mongo_url,
            "AUDIT_DB": f"gatehouse_audit_console_{run_id}",
            "GATEHOUSE_ADMIN_TOKEN": stack.admin_token,
        },
        label="audit-console",
    )
    audience = f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"
    console = harness.start_service(
        "console",
        {
            "CONSOLE_GATEWAY_URL": stack.gateway_url,
            "CONSOLE_IDENTITY_URL": stack.identity_url,
            "CONSOLE_AUDIT_URL": audit.url or "",
            "GATEHOUSE_ADMIN_TOKEN": stack.admin_token,
            "CONSOLE_OIDC_DISCOVERY_URL": discovery,
            "CONSOLE_OIDC_CLIENT_ID": console_client,
            "CONSOLE_OIDC_CLIENT_SECRET": console_secret,
            "CONSOLE_OIDC_RESOURCE": audience,
            "LOG_LEVEL": stack.env["LOG_LEVEL"],
        },
        port=port,
    )
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_jwt_gateway(oidc_provider.url, audience)
        oauth = {
            "providerName": provider["name"],
            "scopes": ["mcp:tools"],
            "grantType": "AUTHORIZATION_CODE",
            "defaultReturnUrl": f"{console_url}/oauth/done",  # consents complete in the console
        }
        target = await admin.create_target(
            gateway["gatewayId"],
            {
                "name": "mine",
                "targetConfiguration": {
                    "mcp": {
                        "mcpServer": {
                            "endpoint": upstream.url,
                            "mcpToolSchema": {"inlinePayload": json.dumps({"tools": TOOL})},
                        }
                    }
                },
                "credentialProviderConfigurations": [
                    {
                        "credentialProviderType": "OAUTH",
                        "credentialProvider": {"oauthCredentialProvider": oauth},
                    }
                ],
            },
        )
    yield World(stack, oidc_provider, console, upstream, provider["name"], gateway, audience, target)
    console.stop()
    audit.stop()
    upstream.stop()
    await _forget_audit_consumer(stack)


async def _forget_audit_consumer(stack: Any) -> None:
    """Leave no `audit` consumer behind: it is a work queue, and the next audit service of the run
    (tests/test_audit.py) must not resume where this one, with another database, stopped."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    try:
        await nc.jetstream().delete_consumer("GATEHOUSE_EVENTS", "audit")
    except NotFoundError:
        pass
    finally:
        await nc.close()


@pytest.fixture
async def page(world: World) -> AsyncIterator[Any]:
    """A fresh browser (no cookies) whose console errors and failed requests end up in world.problems."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=browser.CHROMIUM, headless=True, args=browser.CHROMIUM_ARGS
        )
        context = await chromium.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(30_000)
        p = await context.new_page()
        world.problems.clear()
        # the console's own pages only (the provider's login page has no favicon.ico, say)
        p.on(
            "console",
            lambda m: (
                m.type == "error"
                and p.url.startswith(world.console.url)
                and world.problems.append(f"console: {m.text} at {m.location.get('url', '')}")
            ),
        )
        p.on(
            "pageerror",
            lambda e: p.url.startswith(world.console.url) and world.problems.append(f"error: {e}"),
        )
        yield p
        await context.close()
        await chromium.close()


async def _shot(page: Any, name: str) -> None:
    if os.environ.get("GATEHOUSE_CONSOLE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def _operator(page: Any, w: World) -> None:
    await page.goto(f"{w.console.url}/login")
    await page.fill("#admin-login input[name=token]", w.stack.admin_token)
    async with page.expect_navigation():
        await page.click("#admin-login button")
    assert page.url == f"{w.console.url}/gateways", await page.inner_text("main")


async def _open(page: Any, url: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    headers = await response.all_headers()
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


async def test_every_page_loads_without_console_errors(world: World, page: Any) -> None:
    w = world
    gid, tid = w.gateway["gatewayId"], w.target["targetId"]
    await _open(page, f"{w.console.url}/login")
    await _shot(page, "sign-in")
    html = await page.content()
    assert w.stack.admin_token not in html
    await _operator(page, w)
    await _shot(page, "gateways")
    for path, shot in [
        (f"/gateways/{gid}", "gateway"),
        (f"/gateways/{gid}/targets/{tid}", "target"),
        ("/providers", "providers"),
        (f"/providers/{w.provider}", None),
        ("/audit?type=target.*&since=1h", None),
    ]:
        await _open(page, w.console.url + path)
        if shot:
            await _shot(page, shot)
        html = await page.content()
        assert w.stack.admin_token not in html, path  # never rendered into a page
    assert await page.locator("#events tr[data-type='target.created']").count() >= 1
    assert await page.locator("#tools code", has_text="whoami").count() == 0  # on the target page only
    cookies = await page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies if "console" in c["name"]] == [
        ("gatehouse_console", True, "Lax")
    ]
    assert all(w.stack.admin_token not in c["value"] for c in cookies)
    assert w.problems == []


async def test_an_operator_adds_a_target_and_sees_it_turn_ready(
    world: World, page: Any, sdk_server: Any
) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    await _operator(page, w)
    await page.goto(f"{w.console.url}/gateways/{gid}")
    # the API's own validation message, and the form keeps what was typed
    await page.fill("#new-target input[name=name]", "broken")
    await page.fill("#new-target input[name=endpoint]", "not-a-url")
    await page.click("#new-target button[type=submit]")
    assert "mcpServer.endpoint" in await page.inner_text("#error")  # the API's own message
    assert await page.input_value("#new-target input[name=name]") == "broken"
    assert len(w.problems) == 1 and "status of 400" in w.problems[0], w.problems
    w.problems.clear()  # the 400 of the refused form, as it should be
    name = unique("open")
    await page.fill("#new-target input[name=name]", name)
    await page.fill("#new-target input[name=endpoint]", sdk_server.url)
    await page.click("#new-target button[type=submit]")
    await page.wait_for_url(f"{w.console.url}/gateways/{gid}")
    row = page.locator(f"#targets tr[data-target='{name}']")
    await row.locator(".status.READY").wait_for(timeout=60_000)  # the page refreshes itself
    tools = int((await row.locator("td.num").inner_text()).strip())
    assert tools >= 5
    await row.locator("a").click()
    assert await page.locator("#tools code", has_text="echo").count() == 1
    assert w.problems == []


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(world: World, page: Any) -> None:
    w = world
    gid, tid = w.gateway["gatewayId"], w.target["targetId"]
    await _operator(page, w)
    await page.goto(f"{w.console.url}/gateways/{gid}")
    url = f"{w.console.url}/gateways/{gid}/targets/{tid}/delete"
    # the attack: the operator's own browser (their session cookie) posts without the token
    forged = await page.request.post(url, form={"x": "1"})
    assert forged.status == 403 and "CSRF" in await forged.text()
    wrong = await page.request.post(url, form={"csrf": "guessed"})
    assert wrong.status == 403
    # ... or from another site (a token it somehow knew does not help there either)
    token = await page.locator("#targets input[name=csrf]").first.input_value()
    cross = await page.request.post(url, form={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        r = await admin.http.get(f"/gateways/{gid}/targets/{tid}")
        assert r.status_code == 200 and r.json()["status"] == "READY"  # still there
    # the same post with the page's token works (on a throwaway target)
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        spare = await admin.create_target(gid, harness_target(unique("spare"), w.upstream.url))
    ok = await page.request.post(
        f"{w.console.url}/gateways/{gid}/targets/{spare['targetId']}/delete", form={"csrf": token}
    )
    assert ok.status == 200
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        assert (await admin.http.get(f"/gateways/{gid}/targets/{spare['targetId']}")).status_code == 404


def harness_target(name: str, endpoint: str) -> dict[str, Any]:
    from admin import target_body

    return target_body(name, endpoint, inline_tools=TOOL)


async def _tool_call(w: World, user: str) -> Any:
    jwt = w.user_jwt(user)
    async with mcp_client(
        w.gateway["gatewayUrl"], headers={"Authorization": f"Bearer {jwt}"}, mode="legacy"
    ) as client:
        return await client.call_tool("mine___whoami", {})


async def _connect_in_console(page: Any, w: World, user: str) -> Any:
    """Sign in to the console as ``user``, connect the target 'mine' (consent in the browser); its row."""
    row = page.locator("#connections tr[data-target='mine']")
    await page.goto(f"{w.console.url}/login")
    await page.click("#user-login")
    await browser.through_provider(page, user, w.oidc.users[user])
    await page.wait_for_url(f"{w.console.url}/connections")
    assert await row.locator(".connection.disconnected").count() == 1
    await _shot(page, "connections")
    # connect: on to identity and the provider, consent, back to the console, which completes it
    await row.locator("button.connect").click()
    await page.wait_for_url(re.compile(re.escape(w.oidc.url) + "/.*"))
    await browser.through_provider(page, user, w.oidc.users[user])
    await page.wait_for_url(f"{w.console.url}/connections")
    assert await row.locator(".connection.connected").count() == 1, await page.inner_text("main")
    return row


async def test_a_user_connects_and_disconnects_and_the_next_call_asks_again(world: World, page: Any) -> None:
    w = world
    row = await _connect_in_console(page, w, "U3")
    assert "mcp:tools" in await row.inner_text()
    await _shot(page, "connections-connected")
    result = await _tool_call(w, "U3")
    assert json.loads(result.content[0].text)["sub"] == "U3"  # the call runs with U3's own grant
    # reconnect: a new consent replaces the old one
    since = await row.locator("td").nth(3).inner_text()
    await row.locator("button.reconnect").click()
    await page.wait_for_url(re.compile(re.escape(w.oidc.url) + "/.*"))
    await browser.through_provider(page, "U3", w.oidc.users["U3"])
    await page.wait_for_url(f"{w.console.url}/connections")
    assert await row.locator(".connection.connected").count() == 1
    assert await row.locator("td").nth(3).inner_text() >= since
    # disconnect: gone at identity (and revoked at the provider), and the next call asks again
    await row.locator("button.disconnect").click()
    await page.wait_for_url(f"{w.console.url}/connections")
    assert "revoked at the provider" in await page.inner_text("main")
    assert await row.locator(".connection.disconnected").count() == 1
    jwt = w.user_jwt("U3")
    async with mcp_client(
        w.gateway["gatewayUrl"], headers={"Authorization": f"Bearer {jwt}"}, mode="legacy"
    ) as client:
        with pytest.raises(MCPError) as asked:
            for _ in range(50):  # the gateway forgets its copy on identity.token_revoked, a moment later
                await client.call_tool("mine___whoami", {})
    assert asked.value.error.code == -32042
    assert w.problems == []


async def test_a_consent_link_from_an_mcp_client_completes_in_the_console(world: World, page: Any) -> None:
    """The -32042 URL a plain MCP client shows: the user consents, lands on the console's return URL
    without being signed in there, signs in, and the console completes the consent as them."""
    w = world
    jwt = w.user_jwt("U1")
    async with mcp_client(
        w.gateway["gatewayUrl"], headers={"Authorization": f"Bearer {jwt}"}, mode="legacy"
    ) as client:
        with pytest.raises(MCPError) as asked:
            await client.call_tool("mine___whoami", {})
        assert asked.value.error.code == -32042
        url = asked.value.error.data["elicitations"][0]["url"]
        await page.goto(url)
        await browser.through_provider(page, "U1", w.oidc.users["U1"])
        await page.wait_for_url(f"{w.console.url}/connections")
        assert "Connected" in await page.inner_text("main")
        result = await client.call_tool("mine___whoami", {})
        assert json.loads(result.content[0].text)["sub"] == "U1"
    assert w.problems == []


async def test_the_audit_page_filters_by_type(world: World, page: Any) -> None:
    w = world
    await _operator(page, w)
    await page.goto(f"{w.console.url}/audit?limit=25")
    await _shot(page, "audit")
    await page.fill("#audit-filters input[name=type]", "gateway.*")
    await page.click("#audit-filters button")
    types = await page.locator("#events tr[data-type]").evaluate_all("rows => rows.map(r => r.dataset.type)")
    assert types and set(types) <= {"gateway.created", "gateway.updated", "gateway.deleted"}
    await page.fill("#audit-filters input[name=since]", "yesterday-ish")
    await page.click("#audit-filters button")
    assert "--since" in await page.inner_text("#error") or "since" in await page.inner_text("#error")


async def test_an_operator_completes_a_pending_admin_consent_in_one_click(world: World, page: Any) -> None:
    w = world
    gid = w.gateway["gatewayId"]
    name = unique("synced")
    body = {
        "name": name,
        "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": w.upstream.url}}},
        "credentialProviderConfigurations": [w.target["credentialProviderConfigurations"][0]],
    }
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        created = await admin.create_target(gid, body)
        waiting = await admin.wait_status(gid, created["targetId"])
        assert waiting["status"] == "CREATE_PENDING_AUTH", waiting
    await _operator(page, w)
    await page.goto(f"{w.console.url}/gateways/{gid}")
    row = page.locator(f"#targets tr[data-target='{name}']")
    await row.locator("button.consent").click()
    await page.wait_for_url(re.compile(re.escape(w.oidc.url) + "/.*"))
    await browser.through_provider(page, "admin", w.oidc.users["admin"])
    await page.wait_for_url(f"{w.console.url}/gateways/{gid}")
    assert "Consent given" in await page.inner_text("main")
    await row.locator(".status.READY").wait_for(timeout=60_000)
    async with Admin(w.stack.gateway_url, w.stack.admin_headers) as admin:
        ready = (await admin.http.get(f"/gateways/{gid}/targets/{created['targetId']}")).json()
        assert ready["authorizationStatus"] == "AUTHORIZED" and ready["toolCount"] >= 5
        await admin.http.delete(f"/gateways/{gid}/targets/{created['targetId']}")
    assert w.problems == []


async def test_identity_shows_and_disconnects_only_the_users_own_connections(world: World, page: Any) -> None:
    """The attack: another user (or no valid user) lists or deletes someone's connection through
    identity directly. Each sees only their own, a stranger's delete finds nothing, and a forged
    token is refused; the owner's connection survives it all."""
    w = world
    gid = w.gateway["gatewayId"]
    endpoint = w.upstream.url
    await _connect_in_console(page, w, "U2")
    async with httpx.AsyncClient(base_url=w.stack.identity_url) as identity:
        u2 = w.user_jwt("U2")

        async def listed(token: str) -> httpx.Response:
            return await identity.post(
                "/identities/ListUserConnections", json={"workloadName": gid, "userToken": token}
            )

        mine = (await listed(u2)).json()
        assert mine["userId"].endswith("#U2") and len(mine["connections"]) == 1
        connection = mine["connections"][0]
        assert connection["providerName"] == w.provider and connection["resources"] == [endpoint]
        assert "accessToken" not in json.dumps(mine) and "refresh" not in json.dumps(mine)
        u4 = w.user_jwt("U4")
        assert (await listed(u4)).json()["connections"] == []  # U4 sees none of U2's
        forged = harness.mint_jwt(w.oidc, sub="U2", aud="https://elsewhere.test")
        assert (await listed(forged)).status_code == 401
        delete = {
            "workloadName": gid,
            "providerName": w.provider,
            "scopes": ["mcp:tools"],
            "resources": [endpoint],
        }
        stranger = await identity.post("/identities/DeleteUserConnection", json={**delete, "userToken": u4})
        assert stranger.status_code == 404
        forged_delete = await identity.post(
            "/identities/DeleteUserConnection", json={**delete, "userToken": forged}
        )
        assert forged_delete.status_code == 401
        assert len((await listed(u2)).json()["connections"]) == 1  # still there
        own = await identity.post("/identities/DeleteUserConnection", json={**delete, "userToken": u2})
        assert own.status_code == 200 and own.json() == {"revokedAtProvider": True}
        assert (await listed(u2)).json()["connections"] == []


async def test_an_operator_signs_in_with_an_admin_jwt_at_the_admin_issuer(world: World, page: Any) -> None:
    """With ADMIN_JWT_* set (the same settings gateway and identity take), operators may sign in at
    the admin issuer instead of pasting the token; the access token is then their admin credential."""
    w = world
    audience = f"https://gatehouse.test/admin-{uuid.uuid4().hex[:6]}"  # a resource is a URI
    admin_jwt = {
        "ADMIN_JWT_DISCOVERY_URL": f"{w.oidc.url}/.well-known/openid-configuration",
        "ADMIN_JWT_AUDIENCE": audience,
        "ADMIN_JWT_CLAIM": "scope",
        "ADMIN_JWT_VALUE": "mcp:admin",
    }
    gateway = w.stack.start_gateway_replica(**admin_jwt)
    port = harness.free_port()
    client_id, secret = f"gh-console-admin-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(24)
    harness.remember_secret(secret)
    harness.register_oidc_client(
        w.oidc,
        client_id,
        client_secret=secret,
        redirect_uris=[f"http://127.0.0.1:{port}/login/callback"],
        grant_types=["authorization_code"],
        skip_consent=True,
    )
    console = harness.start_service(
        "console",
        {
            "CONSOLE_GATEWAY_URL": gateway.url or "",
            "CONSOLE_IDENTITY_URL": w.stack.identity_url,
            "CONSOLE_ADMIN_OIDC_CLIENT_ID": client_id,
            "CONSOLE_ADMIN_OIDC_CLIENT_SECRET": secret,
            "CONSOLE_ADMIN_OIDC_SCOPES": "openid mcp:admin",
            **admin_jwt,
        },
        port=port,
        label="console-admin-jwt",
    )
    try:
        await page.goto(f"{console.url}/login")
        await page.click("#operator-login")
        await browser.through_provider(page, "admin", w.oidc.users["admin"])
        await page.wait_for_url(f"{console.url}/gateways")
        assert await page.locator(f"a[href='/gateways/{w.gateway['gatewayId']}']").count() == 1
        assert w.problems == []
    finally:
        console.stop()
