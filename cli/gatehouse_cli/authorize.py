"""``gatehouse authorize``: be the return URL of a consent, then complete the session.

It listens on the return URL (which must be on the workload's allow-list, e.g. a target's
``defaultReturnUrl`` of ``http://127.0.0.1:8765/callback``), prints (or opens) the authorization
URL, waits for the browser to come back with ``session_id`` (the completion handle) and calls
CompleteResourceTokenAuth with ``--user-id`` (an admin finishing a target's implicit sync; needs the
admin token) or ``--user-token`` (a gateway user finishing a tools/call consent). It sends the
``request_uri`` of the URL it printed along, so identity completes only that session: a handle of
another session, brought to this listener by someone else, is refused.
"""

from __future__ import annotations

import http.server
import queue
import threading
import webbrowser
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Gatehouse</title></head>"
    "<body><h1>{title}</h1><p>{text}</p></body></html>"
)


class AuthorizeError(Exception):
    """Why the consent could not be completed; printed as is."""


@dataclass(frozen=True)
class Request:
    authorization_url: str
    return_url: str
    identity_url: str
    user_id: str | None
    user_token: str | None
    admin_token: str | None
    open_browser: bool
    timeout: float


def target_authorization(
    gateway_url: str, admin_token: str, gateway_id: str, target_id: str
) -> tuple[str, str]:
    """(authorization URL, user id) of a target waiting for an admin's consent."""
    response = httpx.get(
        f"{gateway_url.rstrip('/')}/gateways/{gateway_id}/targets/{target_id}",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    if response.status_code != 200:
        raise AuthorizeError(f"cannot read the target: HTTP {response.status_code}: {response.text[:300]}")
    target = response.json()
    oauth2 = (target.get("authorizationData") or {}).get("oauth2")
    if not oauth2:
        raise AuthorizeError(f"the target is {target.get('status')}, not waiting for authorization")
    return oauth2["authorizationUrl"], oauth2["userId"]


def _listen(return_url: str) -> tuple[http.server.HTTPServer, queue.Queue[dict[str, list[str]]]]:
    parts = urlsplit(return_url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise AuthorizeError(
            "the return URL must be http://127.0.0.1:<port>/... (or localhost) to listen on it"
        )
    results: queue.Queue[dict[str, list[str]]] = queue.Queue()
    path = parts.path or "/"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            here = urlsplit(self.path)
            if here.path != path:
                self.send_error(404)
                return
            query = parse_qs(here.query)
            ok = "session_id" in query and "error" not in query
            title = "Consent received" if ok else "Consent failed"
            text = (
                "Gatehouse is finishing the authorization; you may close this window."
                if ok
                else "The authorization server reported an error; see the terminal."
            )
            body = PAGE.format(title=title, text=text).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            results.put(query)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: URLs carry session ids
            pass

    server = http.server.HTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, results


def request_uri_of(authorization_url: str) -> str:
    """The session an authorization URL starts (its ``request_uri``)."""
    values = parse_qs(urlsplit(authorization_url).query).get("request_uri")
    if not values:
        raise AuthorizeError(
            "the authorization URL has no request_uri: is it identity's /oauth2/authorize URL?"
        )
    return values[0]


def complete(
    identity_url: str,
    handle: str,
    *,
    request_uri: str,
    user_id: str | None,
    user_token: str | None,
    admin_token: str | None,
) -> None:
    who = {"userId": user_id} if user_id else {"userToken": user_token}
    headers = {"Authorization": f"Bearer {admin_token}"} if user_id and admin_token else {}
    response = httpx.post(
        f"{identity_url.rstrip('/')}/identities/CompleteResourceTokenAuth",
        json={"userIdentifier": who, "sessionUri": handle, "requestUri": request_uri},
        headers=headers,
        timeout=60,
    )
    if response.status_code != 200:
        raise AuthorizeError(f"completion refused: HTTP {response.status_code}: {response.text[:300]}")


def run(req: Request) -> None:
    request_uri = request_uri_of(req.authorization_url)
    server, results = _listen(req.return_url)
    try:
        print(f"Open this URL to consent:\n\n  {req.authorization_url}\n", flush=True)
        print(f"Waiting for the browser to come back to {req.return_url} ...", flush=True)
        if req.open_browser:
            webbrowser.open(req.authorization_url)
        try:
            query = results.get(timeout=req.timeout)
        except queue.Empty:
            raise AuthorizeError(f"no answer within {req.timeout:g}s") from None
    finally:
        server.shutdown()
    if "error" in query:
        raise AuthorizeError(f"the authorization server answered: {query['error'][0]}")
    complete(
        req.identity_url,
        query["session_id"][0],
        request_uri=request_uri,
        user_id=req.user_id,
        user_token=req.user_token,
        admin_token=req.admin_token,
    )
    print("Authorized: the session is complete.", flush=True)
