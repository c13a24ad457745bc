"""Signing in and out: the operator's admin-token form, and the OpenID sign-ins (users at their
issuer; operators at the admin issuer when configured). Every sign-in gets a fresh session id."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from . import forms
from .api import ApiError
from .oidc import CALLBACK_PATH, Login, clients
from .web import Refused, Web


def router(web: Web, login: Login) -> APIRouter:
    offered = clients(web.settings)
    r = APIRouter()

    @r.get("/login")
    async def login_page(request: Request) -> Response:
        return web.page(request, "login.html")

    @r.post("/login/admin")
    async def admin_login(request: Request) -> Response:
        session = web.session(request)
        token = forms.field(await web.form(request, session), "token")
        try:
            await web.api.gateways(token)
        except ApiError as exc:
            message = "that is not an admin token" if exc.status == 401 else exc.message
            return web.page(request, "login.html", 401 if exc.status == 401 else 503, error=message)
        session = web.sessions.renew(session)
        request.state.new_session = session
        session.admin_token = token
        return web.redirect(request, "/gateways")

    @r.get(CALLBACK_PATH)  # before /login/{who}, which would take it otherwise
    async def callback(request: Request) -> Response:
        session = web.session(request)
        pending = session.pending.pop("login", None)
        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        if pending is None or not state or state != pending["state"]:
            raise Refused("this sign-in was not started in this browser (or is over): start again")
        if not code:
            raise Refused(f"sign-in refused: {request.query_params.get('error', 'no code')}")
        who = pending["who"]
        signed_in = await login.finish(offered[who], pending, code)
        if who == "admin":
            try:
                await web.api.gateways(signed_in.access_token)  # the APIs decide who is an admin
            except ApiError as exc:
                message = "this account is not an admin" if exc.status == 401 else exc.message
                return web.page(request, "login.html", 403 if exc.status == 401 else 503, error=message)
        session = web.sessions.renew(session)
        request.state.new_session = session
        if who == "admin":
            session.admin_token, session.admin_expires_at = signed_in.access_token, signed_in.expires_at
            return web.redirect(request, "/gateways")
        session.user_token, session.user_expires_at = signed_in.access_token, signed_in.expires_at
        session.user_name = signed_in.name
        back = session.pending.pop("after_login", None)
        return web.redirect(request, back["url"] if back else "/connections")

    @r.get("/login/{who}")
    async def start(request: Request, who: str) -> Response:
        """On to the issuer (``who``: ``user``, or ``operator`` at the admin issuer)."""
        client = offered.get("admin" if who == "operator" else who)
        if client is None:
            raise Refused(f"{who} sign-in is not configured on this console", 404)
        session = web.session(request)
        url, pending = await login.start(client)
        session.pending["login"] = {**pending, "who": "admin" if who == "operator" else who}
        return web.redirect(request, url)

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        session = web.session(request)
        await web.form(request, session)
        web.sessions.end(session)
        response = web.redirect(request, "/login")
        web.sessions.clear_cookie(response)
        return response

    return r
