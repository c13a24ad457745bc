"""The two URLs a person's browser visits: authorize (-> provider) and the callback (-> return URL).

Neither redirects anywhere but to the provider's registered authorization endpoint or to the
session's return URL, which was checked against the workload's allow-list when the session began:
no open redirect. Bad or replayed links get a small HTML page, not a redirect.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_contracts.events import AuthorizationFailed, AuthorizationFailure, new_event

from .deps import Deps
from .oauth import challenge_of
from .providers import callback_url

SOURCE = "identity"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status, headers=PAGE_HEADERS)


def code_aad(state: str) -> str:
    return f"state:{state}:code"


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _failed(
    deps: Deps, reason: AuthorizationFailure, session: dict[str, Any] | None, uri: str = ""
) -> None:
    await deps.publish(
        new_event(
            AuthorizationFailed,
            source=SOURCE,
            reason=reason,
            session_uri=session["_id"] if session else uri,
            workload_name=session["workload"] if session else "",
            user_id=session["user"] if session else "",
            provider_name=session["providerName"] if session else "",
        )
    )


async def authorize(deps: Deps, request: Request) -> Response:
    """Send the browser to the provider for the session named by ``request_uri``."""
    uri = request.query_params.get("request_uri", "")
    session = await deps.sessions.get(uri) if uri else None
    if session is None or session["status"] != "IN_PROGRESS" or session["expiresAt"] <= time.time():
        return _page(
            400,
            "Authorization link invalid",
            "This authorization link is invalid, used or expired. "
            "Start again from the application that sent you here.",
        )
    provider = await deps.providers.store.by_id(session["providerId"])
    if provider is None:
        return _page(
            400, "Authorization unavailable", "The credential provider of this link no longer exists."
        )
    challenge = challenge_of(deps.vault.open(session["verifier"], f"session:{uri}:verifier"))
    params: list[tuple[str, str]] = [(k, v) for k, v in session["customParameters"].items()]
    params += [
        ("response_type", "code"),
        ("client_id", provider["clientId"]),
        ("redirect_uri", callback_url(deps.settings.identity_public_url, provider["_id"])),
        ("state", session["state"]),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    if session["scopes"]:
        params.append(("scope", " ".join(session["scopes"])))
    params += [("resource", r) for r in session["resources"]]
    endpoint = provider["metadata"]["authorization_endpoint"]
    separator = "&" if urlsplit(endpoint).query else "?"
    return RedirectResponse(f"{endpoint}{separator}{urlencode(params)}", 302, headers=NO_STORE)


async def callback(deps: Deps, request: Request, provider_id: str) -> Response:
    """The provider's redirect: keep the code (sealed), send the browser to the session's return URL."""
    query = request.query_params
    state = query.get("state", "")
    now = time.time()
    if not state:
        await _failed(deps, "unknown_session", None)
        return _page(400, "Authorization failed", "The authorization server's answer has no state.")
    error = query.get("error")
    code = query.get("code")
    if error is None and not code:
        return _page(
            400, "Authorization failed", "The authorization server's answer has neither code nor error."
        )
    fields: dict[str, Any] = (
        {"status": "FAILED", "failure": error[:64]}
        if error
        else {"status": "CODE_RECEIVED", "code": deps.vault.seal(code or "", code_aad(state))}
    )
    session = await deps.sessions.transition(
        {"state": state, "providerId": provider_id}, "IN_PROGRESS", fields, now
    )
    if session is None:
        known = await deps.sessions.find_by_state(state)
        reason: AuthorizationFailure = (
            "unknown_session"
            if known is None or known["providerId"] != provider_id
            else "expired"
            if known["expiresAt"] <= now
            else "replayed"
        )
        await _failed(deps, reason, known if reason != "unknown_session" else None)
        return _page(
            400,
            "Authorization failed",
            "This authorization answer is invalid, used or expired. "
            "Start again from the application that sent you here.",
        )
    uri = session["_id"]
    if error:
        await _failed(deps, "provider_error", session)
        return RedirectResponse(
            with_query(session["returnUrl"], {"error": error[:64], "session_id": uri}), 302, headers=NO_STORE
        )
    return RedirectResponse(with_query(session["returnUrl"], {"session_id": uri}), 302, headers=NO_STORE)
