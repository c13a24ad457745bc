"""The operators' pages: gateways, targets (status, reasons, tools), credential providers, the audit
trail. Every call carries the admin token the operator signed in with, kept in their session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from . import forms
from .api import ApiError
from .web import Web

AUDIT_FILTERS = ("gateway", "target", "user", "type", "since", "limit")


def router(web: Web) -> APIRouter:
    api = web.api
    r = APIRouter()

    @r.get("/gateways")
    async def gateways(request: Request) -> Response:
        session = web.admin(request)
        return web.page(request, "gateways.html", gateways=await api.gateways(session.admin_token))

    async def gateway_page(request: Request, gateway_id: str, status: int = 200, **extra: object) -> Response:
        token = web.admin(request).admin_token
        gateway = await api.gateway(token, gateway_id)
        targets = await api.targets(token, gateway_id)
        template = "target_rows.html" if request.query_params.get("fragment") == "targets" else "gateway.html"
        context = {"gateway": gateway, "targets": targets, "values": {"auth": "NONE"}, **extra}
        return web.page(request, template, status, **context)

    @r.get("/gateways/{gateway_id}")
    async def gateway(request: Request, gateway_id: str) -> Response:
        return await gateway_page(request, gateway_id)

    @r.post("/gateways/{gateway_id}/targets")
    async def create_target(request: Request, gateway_id: str) -> Response:
        session = web.admin(request)
        values = forms.target_values(await web.form(request, session))
        try:
            created = await api.create_target(session.admin_token, gateway_id, forms.target_body(values))
        except ApiError as exc:
            return await gateway_page(request, gateway_id, exc.status, values=values, error=exc.message)
        session.say(f"Target {created['name']} created: {created['status']}")
        return web.redirect(request, f"/gateways/{gateway_id}")

    async def target_page(
        request: Request, gateway_id: str, target_id: str, status: int = 200, **extra: object
    ) -> Response:
        token = web.admin(request).admin_token
        target = await api.target(token, gateway_id, target_id)
        tools = await api.tools(token, gateway_id, target_id)
        context = {
            "gateway_id": gateway_id,
            "target": target,
            "tools": tools,
            "values": forms.values_of(target),
        }
        return web.page(request, "target.html", status, **{**context, **extra})

    @r.get("/gateways/{gateway_id}/targets/{target_id}")
    async def target(request: Request, gateway_id: str, target_id: str) -> Response:
        return await target_page(request, gateway_id, target_id)

    @r.post("/gateways/{gateway_id}/targets/{target_id}")
    async def update_target(request: Request, gateway_id: str, target_id: str) -> Response:
        session = web.admin(request)
        values = forms.target_values(await web.form(request, session))
        try:
            await api.update_target(session.admin_token, gateway_id, target_id, forms.target_body(values))
        except ApiError as exc:
            return await target_page(
                request, gateway_id, target_id, exc.status, values=values, error=exc.message
            )
        session.say("Target updated; it is synchronized again")
        return web.redirect(request, f"/gateways/{gateway_id}/targets/{target_id}")

    async def act(
        request: Request, gateway_id: str, call: Callable[[str], Awaitable[object]], done: str
    ) -> Response:
        """A one-button action on a target: do it, say how it went, back to the gateway."""
        session = web.admin(request)
        await web.form(request, session)
        try:
            await call(session.admin_token)
            session.say(done)
        except ApiError as exc:
            session.say(exc.message, "error")
        return web.redirect(request, f"/gateways/{gateway_id}")

    @r.post("/gateways/{gateway_id}/targets/{target_id}/delete")
    async def delete_target(request: Request, gateway_id: str, target_id: str) -> Response:
        return await act(
            request,
            gateway_id,
            lambda token: api.delete_target(token, gateway_id, target_id),
            "Target deleted",
        )

    @r.post("/gateways/{gateway_id}/targets/{target_id}/synchronize")
    async def synchronize(request: Request, gateway_id: str, target_id: str) -> Response:
        return await act(
            request, gateway_id, lambda token: api.synchronize(token, gateway_id, target_id), "Synchronizing"
        )

    @r.post("/gateways/{gateway_id}/targets/{target_id}/consent")
    async def consent(request: Request, gateway_id: str, target_id: str) -> Response:
        """The admin's one-time consent for a target's implicit sync: on to its authorization URL;
        the console completes the session at its return URL with the target's user id."""
        session = web.admin(request)
        await web.form(request, session)
        target = await api.target(session.admin_token, gateway_id, target_id)
        oauth2 = (target.get("authorizationData") or {}).get("oauth2") or {}
        if not oauth2.get("authorizationUrl"):
            session.say("This target is not waiting for a consent", "error")
            return web.redirect(request, f"/gateways/{gateway_id}")
        url = oauth2["authorizationUrl"]
        request_uri = parse_qs(urlsplit(url).query).get("request_uri", [""])[0]
        session.pending["consent"] = {
            "requestUri": request_uri,
            "userId": oauth2["userId"],
            "back": f"/gateways/{gateway_id}",
        }
        return web.page(request, "continue.html", url=url, what=f"consent for target {target['name']}")

    @r.get("/providers")
    async def providers(request: Request) -> Response:
        session = web.admin(request)
        items = await api.providers(session.admin_token)
        return web.page(request, "providers.html", providers=items, values={"vendor": "CustomOauth2"})

    @r.post("/providers")
    async def create_provider(request: Request) -> Response:
        session = web.admin(request)
        values = forms.provider_values(await web.form(request, session))
        try:
            created = await api.identity(
                "CreateOauth2CredentialProvider", forms.provider_body(values), session.admin_token
            )
        except ApiError as exc:
            items = await api.providers(session.admin_token)
            values["clientSecret"] = ""  # a secret is never rendered back
            return web.page(
                request, "providers.html", exc.status, providers=items, values=values, error=exc.message
            )
        session.say(
            f"Provider {created['name']} created; register {created['callbackUrl']} as its redirect URI"
        )
        return web.redirect(request, "/providers")

    @r.get("/providers/{name}")
    async def provider(request: Request, name: str) -> Response:
        session = web.admin(request)
        found = await api.identity("GetOauth2CredentialProvider", {"name": name}, session.admin_token)
        return web.page(request, "provider.html", provider=found, values=_provider_values(found))

    @r.post("/providers/{name}")
    async def update_provider(request: Request, name: str) -> Response:
        session = web.admin(request)
        values = forms.provider_values(await web.form(request, session))
        values["name"] = name
        try:
            await api.identity(
                "UpdateOauth2CredentialProvider", forms.provider_body(values), session.admin_token
            )
        except ApiError as exc:
            found = await api.identity("GetOauth2CredentialProvider", {"name": name}, session.admin_token)
            values["clientSecret"] = ""
            return web.page(
                request, "provider.html", exc.status, provider=found, values=values, error=exc.message
            )
        session.say(f"Provider {name} updated")
        return web.redirect(request, "/providers")

    @r.post("/providers/{name}/delete")
    async def delete_provider(request: Request, name: str) -> Response:
        session = web.admin(request)
        await web.form(request, session)
        try:
            await api.identity("DeleteOauth2CredentialProvider", {"name": name}, session.admin_token)
            session.say(f"Provider {name} deleted")
        except ApiError as exc:
            session.say(exc.message, "error")
        return web.redirect(request, "/providers")

    @r.get("/audit")
    async def audit(request: Request) -> Response:
        session = web.admin(request)
        filters = [
            (k, v.strip()) for k, v in request.query_params.multi_items() if k in AUDIT_FILTERS and v.strip()
        ]
        events, error = [], None
        if api.audit_enabled:
            try:
                events = await api.events(session.admin_token, filters)
            except ApiError as exc:
                error = exc.message
        return web.page(request, "audit.html", events=events, filters=dict(filters), error=error)

    return r


def _provider_values(provider: dict[str, object]) -> dict[str, str]:
    metadata = provider.get("authorizationServerMetadata")
    issuer = metadata.get("issuer", "") if isinstance(metadata, dict) else ""
    return {
        "name": str(provider.get("name", "")),
        "vendor": str(provider.get("credentialProviderVendor", "")),
        "discoveryUrl": str(
            provider.get("discoveryUrl") or (f"{issuer}/.well-known/openid-configuration" if issuer else "")
        ),
        "clientId": str(provider.get("clientId", "")),
        "clientSecret": "",
    }
