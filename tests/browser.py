"""A person at a browser, for OAuth consent flows: headless Chromium driven by Playwright.

    from browser import consent
    final_url = await consent(authorization_url, "U1", harness.OIDC_USERS["U1"])
    # e.g. http://127.0.0.1:<port>/callback?session_id=<completion handle>

`consent()` opens the URL in a fresh browser (own temporary profile: no cookies, no session at
the provider), follows whatever redirects happen (identity service -> oidc-provider), fills the
provider's login page (input#username, input#password, button#submit), answers its consent page
(button#approve or button#deny), follows the redirects back (provider -> identity callback ->
return URL) and returns the URL the browser finally landed on.

The browser is Debian's chromium (scripts/install-browser.sh), never `playwright install`:
executable $GATEHOUSE_CHROMIUM, default /usr/bin/chromium.

Nothing here logs URLs (they carry codes, state and session ids); errors name only the path.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Any

CHROMIUM = os.environ.get("GATEHOUSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
]

# what the last consent() call took, in seconds (launch, flow, total) - for the curious
last_timing: dict[str, float] = {}


class ConsentError(RuntimeError):
    """The login/consent pages did not go as expected (bad password, provider error page, ...)."""


def _path(url: str) -> str:
    """The URL without query, fragment and the provider's interaction ids."""
    return re.sub(r"/(interaction|auth)/[^/]+", r"/\1/:uid", url.split("?")[0].split("#")[0])


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


async def _page_kind(page: Any) -> str | None:
    """body[data-page] of the current document: "login" | "consent" | "error" | "return" | None.
    Retries while a navigation replaces the document."""
    for _ in range(50):
        try:
            return await page.evaluate("() => document.body ? (document.body.dataset.page || null) : null")
        except Exception as e:  # noqa: BLE001 - "Execution context was destroyed" mid-navigation
            if "context" not in str(e).lower() and "navigat" not in str(e).lower():
                raise
            await page.wait_for_load_state("load")
    return None


async def consent(
    authorization_url: str,
    username: str,
    password: str,
    *,
    approve: bool = True,
    timeout: float = 30.0,
    stop_at: str | None = None,
    max_steps: int = 10,
) -> str:
    """Log in as `username` and approve (or deny) the consent; return the final URL.

    stop_at: a URL prefix nobody may be serving (e.g. a placeholder redirect_uri): when the
    browser fails to load a URL starting with it, that URL is returned instead of an error.
    (Playwright's request routing can't catch it: it never sees redirect targets.)
    Raises ConsentError on a refused login, a provider error page or any other failed load.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    if not chromium_available():
        raise ConsentError(f"{CHROMIUM} not found: run scripts/install-browser.sh")
    started = time.monotonic()
    profile = tempfile.mkdtemp(prefix="gatehouse-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                timeout=timeout * 1000,
            )
            launched = time.monotonic()
            try:
                context.set_default_timeout(timeout * 1000)
                context.set_default_navigation_timeout(timeout * 1000)
                page = context.pages[0] if context.pages else await context.new_page()
                navigations: list[str] = []

                def _on_request(request: Any) -> None:
                    if request.is_navigation_request() and request.frame == page.main_frame:
                        navigations.append(request.url)

                page.on("request", _on_request)
                try:
                    await page.goto(authorization_url, wait_until="load")
                    final = await _drive(page, username, password, approve=approve, max_steps=max_steps)
                except PlaywrightError as e:
                    last = navigations[-1] if navigations else authorization_url
                    if stop_at and last.startswith(stop_at):
                        final = last
                    else:
                        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                        raise ConsentError(f"browser failed at {_path(last)}: {reason}") from None
            finally:
                await context.close()
            done = time.monotonic()
            last_timing.clear()
            last_timing.update(launch=launched - started, flow=done - launched, total=done - started)
            return final
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def through_provider(page: Any, username: str, password: str, *, approve: bool = True) -> str:
    """Log in and consent on the provider's pages from wherever ``page`` is now (a browser of the
    test's own, e.g. signed in to the console); the URL it ends on once back from the provider."""
    return await _drive(page, username, password, approve=approve, max_steps=10)


async def _drive(page: Any, username: str, password: str, *, approve: bool, max_steps: int) -> str:
    for _ in range(max_steps):
        kind = await _page_kind(page)
        if kind == "login":
            # a second login is fine (identity's own check of who consents, then the provider),
            # a login page that shows an error is not
            if await page.locator("#login-error").count():
                raise ConsentError(f"login as {username!r} was refused at {_path(page.url)}")
            await page.fill("#username", username)
            await page.fill("#password", password)
            async with page.expect_navigation(wait_until="load"):
                await page.click("#submit")
            continue
        if kind == "consent":
            async with page.expect_navigation(wait_until="load"):
                await page.click("#approve" if approve else "#deny")
            continue
        if kind == "error":
            text = " ".join((await page.inner_text("body")).split())
            raise ConsentError(f"provider error page at {_path(page.url)}: {text[:300]}")
        return str(page.url)
    raise ConsentError(f"still on the provider's pages after {max_steps} steps ({_path(page.url)})")


async def visit(url: str, *, timeout: float = 30.0) -> tuple[int, str]:
    """Open `url` in a fresh browser (no cookies: someone else's browser) and return the HTTP
    status and visible text of the page it ends on, e.g. an attacker's callback URL in a victim's
    browser."""
    from playwright.async_api import async_playwright

    if not chromium_available():
        raise ConsentError(f"{CHROMIUM} not found: run scripts/install-browser.sh")
    profile = tempfile.mkdtemp(prefix="gatehouse-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=timeout * 1000
            )
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                response = await page.goto(url, wait_until="load", timeout=timeout * 1000)
                return (response.status if response else 0), " ".join((await page.inner_text("body")).split())
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
