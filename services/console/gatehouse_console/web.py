"""What every page shares: the session, CSRF-checked forms, rendering, security headers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .api import Api
from .sessions import Session, Sessions
from .settings import Settings

# No inline script or style anywhere: every script and stylesheet is a file under /static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # URLs of the consent flow never leak to another site ("no-referrer" would make browsers send
    # "Origin: null" with our own forms)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the console will not act on (no session, a bad CSRF token): 403 with the reason."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class SignInRequired(Exception):
    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.who = who


def _when(value: Any) -> str:
    if not isinstance(value, (int, float)) or not value:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Web:
    settings: Settings
    api: Api
    sessions: Sessions
    templates: Environment

    @classmethod
    def create(cls, settings: Settings, api: Api) -> Web:
        templates = Environment(
            loader=PackageLoader("gatehouse_console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        templates.filters["when"] = _when
        return cls(
            settings, api, Sessions(settings.console_session_ttl_seconds, settings.secure_cookies), templates
        )

    @property
    def origin(self) -> str:
        parts = urlsplit(self.settings.console_public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def session(self, request: Request) -> Session:
        """The request's session, or a new one (its cookie is set by the response helpers)."""
        found = self.sessions.get(request)
        if found is None:
            found = self.sessions.new()
            request.state.new_session = found
        return found

    def admin(self, request: Request) -> Session:
        session = self.session(request)
        if not session.is_admin:
            raise SignInRequired("admin")
        return session

    def user(self, request: Request) -> Session:
        session = self.session(request)
        if not session.is_user:
            raise SignInRequired("user")
        return session

    async def form(self, request: Request, session: Session) -> FormData:
        """The posted form, once its CSRF token (and Origin, when the browser sends one) checks out."""
        origin = request.headers.get("origin")
        if origin is not None and origin != self.origin:
            raise Refused("the form was posted from another site")
        form = await request.form(max_files=0, max_fields=100)
        token = form.get("csrf")
        if not isinstance(token, str) or not session.csrf_ok(token):
            raise Refused("the form's CSRF token is missing or wrong: reload the page and try again")
        return form

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        session = self.session(request)
        html = self.templates.get_template(template).render(
            session=session,
            csrf=session.csrf,
            flash=session.take_flash(),
            users_enabled=self.settings.users_enabled,
            operator_oidc=bool(
                self.settings.admin_jwt_discovery_url and self.settings.console_admin_oidc_client_id
            ),
            audit_enabled=self.api.audit_enabled,
            now=time.time(),
            **context,
        )
        return self.finish(request, HTMLResponse(html, status))

    def redirect(self, request: Request, url: str) -> Response:
        return self.finish(request, RedirectResponse(url, 303))

    def finish(self, request: Request, response: Response) -> Response:
        new = getattr(request.state, "new_session", None)
        if new is not None:
            self.sessions.set_cookie(response, new)
        response.headers.update(SECURITY_HEADERS)
        return response
