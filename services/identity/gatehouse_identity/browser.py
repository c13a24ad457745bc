"""The URLs a person's browser visits: authorize (-> provider, or first -> the user's own issuer to
log in), the callbacks, and the small pages in between.

Neither redirects anywhere but to an authorization endpoint identity knows or to the session's
return URL, which was checked against the workload's allow-list when the session began: no open
redirect. Bad, replayed or foreign links get a small HTML page, not a redirect.

``/authorize`` binds the flow to the browser that opened it (a cookie, see ``session_binding``);
the latest browser to open the link owns it (a fresh ``state`` each time). The provider's callback
hands the return URL a fresh completion handle, or, when identity verified the person itself and
there is no return URL, completes the session at once.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_contracts.events import AuthorizationFailure
from gatehouse_contracts.jwt import InvalidToken, IssuerUnavailable

from . import consenting_user
from .deps import Deps
from .errors import GatehouseError
from .oauth import challenge_of, new_state
from .providers import callback_url
from .session_binding import code_aad, cookie_header, cookie_name, digest, matches, new_secret
from .tokens import finish, publish_failure

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
START_AGAIN = "Start again from the application that sent you here."


def page(status: int, title: str, text: str, kind: str = "error") -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body data-page='gatehouse-{kind}'><h1>{html.escape(title)}</h1>"
        f"<p id='message'>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status, headers=PAGE_HEADERS)


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 302, headers=NO_STORE)


def bound(deps: Deps, request: Request, session: dict[str, Any]) -> bool:
    """Whether this browser holds the cookie ``/authorize`` gave for this session."""
    name = cookie_name(deps.settings.identity_public_url, session["_id"])
    return matches(request.cookies.get(name), session.get("binding"))


def forget_binding(deps: Deps, response: Response, session: dict[str, Any]) -> Response:
    response.headers.append(
        "set-cookie", cookie_header(deps.settings.identity_public_url, session["_id"], "", 0)
    )
    return response


async def refused(
    deps: Deps, reason: AuthorizationFailure, session: dict[str, Any] | None, text: str, status: int = 400
) -> HTMLResponse:
    await publish_failure(deps, reason, session)
    return page(status, "Authorization failed", text)


def provider_url(deps: Deps, session: dict[str, Any], provider: dict[str, Any], state: str) -> str:
    challenge = challenge_of(deps.vault.open(session["verifier"], f"session:{session['_id']}:verifier"))
    params: list[tuple[str, str]] = [(k, v) for k, v in session["customParameters"].items()]
    params += [
        ("response_type", "code"),
        ("client_id", provider["clientId"]),
        ("redirect_uri", callback_url(deps.settings.identity_public_url, provider["_id"])),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    if session["scopes"]:
        params.append(("scope", " ".join(session["scopes"])))
    params += [("resource", r) for r in session["resources"]]
    endpoint = provider["metadata"]["authorization_endpoint"]
    separator = "&" if urlsplit(endpoint).query else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def live(session: dict[str, Any], now: float) -> bool:
    return bool(session["status"] == "IN_PROGRESS" and session["expiresAt"] > now)


async def authorize(deps: Deps, request: Request) -> Response:
    """Bind the session named by ``request_uri`` to this browser and send it on: to the person's own
    issuer to log in first when identity verifies who consents, else to the provider."""
    uri = request.query_params.get("request_uri", "")
    session = await deps.sessions.get(uri) if uri else None
    now = time.time()
    if session is None or not live(session, now):
        return page(
            400, "Authorization link invalid", f"This link is invalid, used or expired. {START_AGAIN}"
        )
    provider = await deps.providers.store.by_id(session["providerId"])
    if provider is None:
        return page(
            400, "Authorization unavailable", "The credential provider of this link no longer exists."
        )
    cookie = new_secret()
    fields: dict[str, Any] = {"binding": digest(cookie)}
    try:
        if session.get("verifyUser"):  # in every browser that opens the link: a check is per browser
            fields["verified"] = False
            target = await consenting_user.login_url(deps, session, fields)
        else:
            fields["state"] = new_state()
            target = provider_url(deps, session, provider, fields["state"])
    except IssuerUnavailable:
        return page(
            503,
            "Sign-in unavailable",
            "Your organisation's sign-in service cannot be reached; try again shortly.",
        )
    if await deps.sessions.transition({"_id": uri}, "IN_PROGRESS", fields, now) is None:
        return page(
            400, "Authorization link invalid", f"This authorization link is used or expired. {START_AGAIN}"
        )
    response = redirect(target)
    max_age = int(session["expiresAt"] - now)
    response.headers.append(
        "set-cookie", cookie_header(deps.settings.identity_public_url, uri, cookie, max_age)
    )
    return response


async def callback(deps: Deps, request: Request, provider_id: str) -> Response:
    """The provider's redirect: only in the browser that started the flow; the code is kept (sealed)."""
    query = request.query_params
    state = query.get("state", "")
    now = time.time()
    if not state:
        return await refused(deps, "unknown_session", None, "The authorization server's answer has no state.")
    error, code = query.get("error"), query.get("code")
    if error is None and not code:
        return page(
            400, "Authorization failed", "The authorization server's answer has neither code nor error."
        )
    session = await deps.sessions.find_by("state", state)
    if session is None or session["providerId"] != provider_id:
        return await refused(
            deps, "unknown_session", None, f"This authorization answer is invalid. {START_AGAIN}"
        )
    if not live(session, now):
        reason: AuthorizationFailure = "expired" if session["expiresAt"] <= now else "replayed"
        return await refused(
            deps, reason, session, f"This authorization answer is used or expired. {START_AGAIN}"
        )
    if not bound(deps, request, session) or (session.get("verifyUser") and not session.get("verified")):
        return await refused(
            deps,
            "browser_mismatch",
            session,
            "This browser did not start this authorization, so it cannot finish it. "
            "Open the authorization link in the browser you want to use.",
            403,
        )
    if error:
        await deps.sessions.fail(session["_id"], "provider_error")
        await publish_failure(deps, "provider_error", session)
        if session.get("returnUrl"):
            return forget_binding(
                deps, redirect(with_query(session["returnUrl"], {"error": error[:64]})), session
            )
        return forget_binding(
            deps, page(400, "Authorization declined", f"The provider answered: {error[:64]}."), session
        )
    return forget_binding(deps, await _code_received(deps, session, state, code or "", now), session)


async def _code_received(deps: Deps, session: dict[str, Any], state: str, code: str, now: float) -> Response:
    sealed = deps.vault.seal(code, code_aad(state))
    if session.get("returnUrl"):
        handle = new_secret()
        claimed = await deps.sessions.transition(
            {"_id": session["_id"], "state": state},
            "IN_PROGRESS",
            {"status": "CODE_RECEIVED", "code": sealed, "handle": digest(handle)},
            now,
        )
        if claimed is None:
            return await refused(
                deps, "replayed", session, f"This authorization answer was already used. {START_AGAIN}"
            )
        return redirect(with_query(session["returnUrl"], {"session_id": handle}))
    # identity verified the person at their own issuer and nobody else is to complete: do it now
    claimed = await deps.sessions.transition(
        {"_id": session["_id"], "state": state}, "IN_PROGRESS", {"status": "COMPLETING", "code": sealed}, now
    )
    if claimed is None:
        return await refused(
            deps, "replayed", session, f"This authorization answer was already used. {START_AGAIN}"
        )
    try:
        await finish(deps, claimed)
    except GatehouseError:
        await deps.sessions.fail(session["_id"], "provider_error")
        return page(
            502, "Authorization failed", f"The provider did not accept the authorization. {START_AGAIN}"
        )
    return page(
        200,
        "Connected",
        f"Gatehouse can now use {session['providerName']} for you. Return to your agent and try again.",
        "connected",
    )


async def login_callback(deps: Deps, request: Request) -> Response:
    """The person's issuer sends the browser back: check who logged in, then on to the provider."""
    query = request.query_params
    state, now = query.get("state", ""), time.time()
    session = await deps.sessions.find_by("loginState", state) if state else None
    if session is None or not live(session, now):
        return await refused(
            deps, "unknown_session", None, f"This sign-in answer is invalid, used or expired. {START_AGAIN}"
        )
    if not bound(deps, request, session):
        return await refused(
            deps,
            "browser_mismatch",
            session,
            "This browser did not start this authorization, so it cannot finish it.",
            403,
        )
    claimed = await deps.sessions.transition(
        {"_id": session["_id"], "loginState": state}, "IN_PROGRESS", {"loginState": None}, now
    )
    if claimed is None:
        return await refused(
            deps, "replayed", session, f"This sign-in answer was already used. {START_AGAIN}"
        )
    code = query.get("code")
    try:
        if query.get("error") or not code:
            raise InvalidToken("the sign-in was cancelled or refused")
        user = await consenting_user.user_of(deps, claimed, code)
    except (GatehouseError, InvalidToken, IssuerUnavailable):
        return await refused(
            deps,
            "login_failed",
            session,
            "Signing you in did not succeed. Open the authorization link again to retry.",
        )
    if user != session["user"]:
        await deps.sessions.fail(session["_id"], "user_mismatch")
        return await refused(
            deps,
            "user_mismatch",
            session,
            "You signed in as someone other than the person who asked for this authorization, "
            "so it has been cancelled. Only that person can give this consent.",
            403,
        )
    provider = await deps.providers.store.by_id(session["providerId"])
    if provider is None:
        return page(
            400, "Authorization unavailable", "The credential provider of this link no longer exists."
        )
    state = new_state()
    fields = {"verified": True, "state": state, "loginNonce": None, "loginVerifier": None}
    if await deps.sessions.transition({"_id": session["_id"]}, "IN_PROGRESS", fields, now) is None:
        return page(
            400, "Authorization link invalid", f"This authorization is used or expired. {START_AGAIN}"
        )
    return redirect(provider_url(deps, session, provider, state))
