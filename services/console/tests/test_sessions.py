"""Sessions: random ids only in the cookie, a new id at sign-in, bounded in number."""

from __future__ import annotations

import pytest
from gatehouse_console import sessions
from gatehouse_console.sessions import Sessions
from starlette.requests import Request
from starlette.responses import Response


def _request(cookie: str) -> Request:
    return Request({"type": "http", "headers": [(b"cookie", cookie.encode())]})


def test_the_cookie_holds_the_id_only_and_sign_in_renews_it() -> None:
    store = Sessions(ttl=60, secure=False)
    first = store.new()
    first.admin_token = "the-admin-token"
    response = Response()
    store.set_cookie(response, first)
    cookie = response.headers["set-cookie"]
    assert "the-admin-token" not in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert store.get(_request(f"gatehouse_console={first.sid}")) is first
    renewed = store.renew(first)
    assert renewed.sid != first.sid and renewed.admin_token == "the-admin-token"
    assert store.get(_request(f"gatehouse_console={first.sid}")) is None  # the old id is gone
    assert renewed.csrf_ok(renewed.csrf) and not renewed.csrf_ok("guess")


def test_https_cookies_are_secure_and_host_bound() -> None:
    store = Sessions(ttl=60, secure=True)
    response = Response()
    store.set_cookie(response, store.new())
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-gatehouse_console=") and "Secure" in cookie and "Path=/" in cookie


def test_the_number_of_sessions_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    store = Sessions(ttl=60, secure=False)
    made = [store.new() for _ in range(5)]
    alive = [s for s in made if store.get(_request(f"gatehouse_console={s.sid}")) is not None]
    assert len(alive) == 3 and made[-1] in alive
