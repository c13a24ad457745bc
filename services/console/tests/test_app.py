"""The console app on its own: an API that is down is a clear 503 naming it, and a form without its
CSRF token is refused before anything is called."""

from __future__ import annotations

import re
import socket

from gatehouse_console.app import build
from gatehouse_console.settings import Settings
from starlette.testclient import TestClient


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _console() -> TestClient:
    down = f"http://127.0.0.1:{_closed_port()}"
    settings = Settings(
        console_gateway_url=down, console_identity_url=down, console_public_url="http://testserver"
    )
    return TestClient(build(settings))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_gateway_that_is_down_is_a_clear_503() -> None:
    with _console() as console:
        token = _csrf(console.get("/login").text)
        r = console.post("/login/admin", data={"csrf": token, "token": "t"})
        assert r.status_code == 503 and "is unreachable" in r.text
        assert "Content-Security-Policy" in r.headers


def test_a_form_without_its_csrf_token_is_refused() -> None:
    with _console() as console:
        console.get("/login")
        r = console.post("/login/admin", data={"token": "t"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = console.post(
            "/login/admin",
            data={"csrf": _csrf(console.get("/login").text), "token": "t"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "another site" in r.text
