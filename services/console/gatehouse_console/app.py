"""The console's composition root: ``build(settings)`` wires the HTTP client, the APIs, sessions,
templates and the pages into the ASGI app uvicorn serves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import httpx
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from gatehouse_contracts.metrics import add_metrics_route

from . import operator, signin, user
from .api import Api, ApiError
from .oidc import Login
from .settings import Settings
from .web import CSP, Refused, SignInRequired, Web

log = logging.getLogger("gatehouse.console")


def build(settings: Settings) -> ASGIApp:
    http = httpx.AsyncClient(timeout=settings.console_http_timeout_seconds, trust_env=False)
    api = Api(http, settings.console_gateway_url, settings.console_identity_url, settings.console_audit_url)
    web = Web.create(settings, api)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("console on %s", settings.console_public_url)
        yield
        await http.aclose()

    app = FastAPI(
        title="Gatehouse console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.mount("/static", StaticFiles(directory=str(files("gatehouse_console") / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: object) -> Response:
        response: Response = await call_next(request)  # type: ignore[operator]
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return web.page(request, "login.html", 401, need=exc.who)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return web.page(request, "error.html", exc.status, message=exc.message)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        session = web.session(request)
        if exc.status == 401 and session.is_admin:  # the token was changed or revoked: sign in again
            session.admin_token = ""
            return web.page(request, "login.html", 401, error=exc.message)
        return web.page(request, "error.html", exc.status if exc.status >= 400 else 502, message=exc.message)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        """The console serves pages (it keeps no state elsewhere; the APIs answer for themselves)."""
        return {"status": "ok"}

    @app.get("/")
    async def home(request: Request) -> Response:
        session = web.session(request)
        if session.is_admin:
            return web.redirect(request, "/gateways")
        if session.is_user:
            return web.redirect(request, "/connections")
        return web.page(request, "login.html")

    add_metrics_route(app)  # the process's own (CPU, memory, GC); the console holds no other state
    app.include_router(operator.router(web))
    app.include_router(signin.router(web, Login(http, settings.console_public_url)))
    app.include_router(user.router(web))
    return app
