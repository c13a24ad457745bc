"""Browser sessions, kept server-side: the cookie holds only a random id, never a token.

Credentials (an operator's admin token, a user's access token) live in this process's memory for
the session's lifetime, so a leaked cookie jar or a page's HTML holds none of them. One console
process per deployment (its sessions are not shared between replicas; a restart signs everyone out).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

MAX_SESSIONS = 10_000


@dataclass
class Session:
    sid: str
    csrf: str
    expires_at: float
    admin_token: str = ""
    admin_expires_at: float = float("inf")  # an admin JWT's expiry; the static token has none
    user_token: str = ""
    user_expires_at: float = 0.0
    user_name: str = ""
    # a flow in progress: OIDC login {state, verifier, nonce}, or a consent {requestUri, ...}
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, message), shown once

    @property
    def is_admin(self) -> bool:
        return bool(self.admin_token) and self.admin_expires_at > time.time()

    @property
    def is_user(self) -> bool:
        return bool(self.user_token) and self.user_expires_at > time.time()

    def say(self, message: str, kind: str = "info") -> None:
        self.flash.append((kind, message))

    def take_flash(self) -> list[tuple[str, str]]:
        shown, self.flash = self.flash, []
        return shown

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, ttl: float, secure: bool) -> None:
        self._ttl = ttl
        self._secure = secure
        # the __Host- prefix pins the cookie to this host and path / (browsers honour it on https only)
        self.cookie = "__Host-gatehouse_console" if secure else "gatehouse_console"
        self._by_id: dict[str, Session] = {}

    def get(self, request: Request) -> Session | None:
        sid = request.cookies.get(self.cookie, "")
        session = self._by_id.get(sid)
        if session is None or session.expires_at <= time.time():
            self._by_id.pop(sid, None)
            return None
        return session

    def new(self) -> Session:
        now = time.time()
        if len(self._by_id) >= MAX_SESSIONS:
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires_at > now}
            if len(self._by_id) >= MAX_SESSIONS:  # full of live sessions: drop the oldest
                oldest = min(self._by_id.values(), key=lambda s: s.expires_at)
                del self._by_id[oldest.sid]
        session = Session(
            sid=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), expires_at=now + self._ttl
        )
        self._by_id[session.sid] = session
        return session

    def renew(self, old: Session | None) -> Session:
        """A fresh session id on every sign-in (no fixation); what the old one was doing carries over."""
        session = self.new()
        if old is not None:
            self._by_id.pop(old.sid, None)
            session.admin_token, session.user_token = old.admin_token, old.user_token
            session.admin_expires_at = old.admin_expires_at
            session.user_expires_at, session.user_name = old.user_expires_at, old.user_name
            session.pending, session.flash = old.pending, old.flash
        return session

    def end(self, session: Session) -> None:
        self._by_id.pop(session.sid, None)

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            self.cookie,
            session.sid,
            max_age=int(self._ttl),
            path="/",
            httponly=True,
            secure=self._secure,
            # Lax, not Strict: the sign-in and consent flows come back to the console as top-level
            # navigations from another site, and must find the session
            samesite="lax",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/", httponly=True, secure=self._secure, samesite="lax")
