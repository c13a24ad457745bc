"""Users' pages: sign-in at their issuer, "My connections", connect, disconnect, and the return URL
where every consent (theirs, an MCP client's -32042, an operator's) is completed.

How the console acts for a user: it forwards the user's own access token (from their issuer, for
the gateways' audience) to identity, which validates it against the gateway's authorizer, exactly
as for the gateway itself. Listing and disconnecting need nothing else. Starting a consent needs a
workload access token for that user (``GetWorkloadAccessTokenForJWT``), which identity gives the
admin credential only: the console asks with its own ``GATEHOUSE_ADMIN_TOKEN``, and identity still
binds the token to the user the JWT proves. Which gateways and targets exist, the console reads
with that token too (nothing of it reaches a page but names and statuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from . import forms
from .api import ApiError
from .sessions import Session
from .web import Refused, Web

RETURN_PATH = "/oauth/done"
Doc = dict[str, Any]


@dataclass
class Row:
    """One target of a gateway the user uses, and their connection to it."""

    gateway: Doc
    target: Doc
    oauth: Doc
    connection: Doc | None

    @property
    def per_user(self) -> bool:
        return self.oauth.get("grantType") == "AUTHORIZATION_CODE"


def _matches(connection: Doc, oauth: Doc, endpoint: str) -> bool:
    return (
        connection["providerName"] == oauth.get("providerName")
        and sorted(connection["scopes"]) == sorted(set(oauth.get("scopes", [])))
        and sorted(connection["resources"]) == [endpoint]
    )


def router(web: Web) -> APIRouter:
    api, settings = web.api, web.settings
    service_token = settings.gatehouse_admin_token
    return_url = settings.console_public_url.rstrip("/") + RETURN_PATH
    r = APIRouter()

    def enabled() -> None:
        if not settings.users_enabled:
            raise Refused("user sign-in is not configured on this console (CONSOLE_OIDC_*)", 404)

    async def rows(session: Session) -> tuple[str, list[Row]]:
        """Every target of the gateways whose authorizer accepts the user's token."""
        user_id, found = "", []
        for gateway in await api.gateways(service_token):
            authorizer = (gateway.get("authorizerConfiguration") or {}).get("customJWTAuthorizer") or {}
            if authorizer.get("discoveryUrl") != settings.console_oidc_discovery_url:
                continue
            body = {"workloadName": gateway["gatewayId"], "userToken": session.user_token}
            try:
                mine = await api.identity("ListUserConnections", body)
            except ApiError as exc:
                if exc.status in (400, 401, 404):  # not a gateway of theirs (audience, clients, scopes)
                    continue
                raise
            user_id = mine["userId"]
            for target in await api.targets(service_token, gateway["gatewayId"]):
                oauth = forms.oauth_of(target)
                endpoint = forms.endpoint_of(target)
                connection = next((c for c in mine["connections"] if _matches(c, oauth, endpoint)), None)
                found.append(Row(gateway, target, oauth, connection))
        return user_id, found

    @r.get("/connections")
    async def connections(request: Request) -> Response:
        enabled()
        session = web.user(request)
        user_id, found = await rows(session)
        return web.page(request, "connections.html", rows=found, user_id=user_id)

    async def row_of(session: Session, form: Any) -> Row:
        gateway_id, target_id = forms.field(form, "gateway"), forms.field(form, "target")
        for row in (await rows(session))[1]:
            if (
                row.gateway["gatewayId"] == gateway_id
                and row.target["targetId"] == target_id
                and row.per_user
            ):
                return row
        raise Refused("no such target needs your authorization", 404)

    @r.post("/connections/connect")
    async def connect(request: Request) -> Response:
        """Start the consent for a target (again, with ``force``), as the gateway's -32042 would."""
        enabled()
        session = web.user(request)
        form = await web.form(request, session)
        row = await row_of(session, form)
        gateway_id = row.gateway["gatewayId"]
        try:
            workload = await api.identity(
                "GetWorkloadAccessTokenForJWT",
                {"workloadName": gateway_id, "userToken": session.user_token},
                service_token,
            )
            answer = await api.identity(
                "oauth2/token",
                {
                    "workloadIdentityToken": workload["workloadAccessToken"],
                    "resourceCredentialProviderName": row.oauth["providerName"],
                    "scopes": row.oauth.get("scopes", []),
                    "oauth2Flow": "USER_FEDERATION",
                    "resourceOauth2ReturnUrl": return_url,
                    "forceAuthentication": forms.field(form, "force") == "1",
                    "customParameters": row.oauth.get("customParameters", {}),
                    "resources": [forms.endpoint_of(row.target)],
                },
                service_token,
            )
        except ApiError as exc:
            session.say(exc.message, "error")
            return web.redirect(request, "/connections")
        if not answer.get("authorizationUrl"):
            session.say(f"{row.target['name']} is already connected")
            return web.redirect(request, "/connections")
        url = answer["authorizationUrl"]
        session.pending["consent"] = {"requestUri": answer["sessionUri"], "back": "/connections"}
        return web.page(request, "continue.html", url=url, what=f"connecting {row.target['name']}")

    @r.post("/connections/disconnect")
    async def disconnect(request: Request) -> Response:
        enabled()
        session = web.user(request)
        row = await row_of(session, await web.form(request, session))
        body = {
            "workloadName": row.gateway["gatewayId"],
            "userToken": session.user_token,
            "providerName": row.oauth["providerName"],
            "scopes": row.oauth.get("scopes", []),
            "resources": [forms.endpoint_of(row.target)],
        }
        try:
            answer = await api.identity("DeleteUserConnection", body)
        except ApiError as exc:
            session.say(exc.message, "error")
            return web.redirect(request, "/connections")
        at_provider = " and revoked at the provider" if answer.get("revokedAtProvider") else ""
        session.say(f"Disconnected {row.target['name']}{at_provider}")
        return web.redirect(request, "/connections")

    @r.get(RETURN_PATH)
    async def completed(request: Request) -> Response:
        """The return URL: complete the consent this browser just gave. An operator's target consent
        completes with the target's user id (their admin token); a user's with their own token."""
        session = web.session(request)
        handle = request.query_params.get("session_id", "")
        if not handle:
            raise Refused("no session_id: open the authorization link again")
        pending = session.pending.pop("consent", None) or {}
        if pending.get("userId"):
            who: Doc = {"userId": pending["userId"]}
            token: str | None = session.admin_token
        elif session.is_user:
            who, token = {"userToken": session.user_token}, None
        else:  # a consent an MCP client asked for (-32042): sign in first, then come back here
            enabled()
            session.pending["after_login"] = {"url": str(request.url.path) + "?" + str(request.url.query)}
            return web.redirect(request, "/login/user")
        body: Doc = {"userIdentifier": who, "sessionUri": handle}
        if pending.get("requestUri"):
            body["requestUri"] = pending["requestUri"]
        try:
            await api.identity("CompleteResourceTokenAuth", body, token)
        except ApiError as exc:
            raise Refused(f"the consent could not be completed: {exc.message}", exc.status) from None
        session.say("Connected" if "userToken" in who else "Consent given; the target is synchronized now")
        return web.redirect(request, pending.get("back", "/connections"))

    return r
