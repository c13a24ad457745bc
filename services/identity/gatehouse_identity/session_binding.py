"""What ties an authorization session to one browser and one completion: pure values, no I/O.

- The **binding cookie**: ``/authorize`` gives the browser a random value in a cookie named after
  the session and keeps only its digest; the callbacks accept only a browser that sends it back,
  so a code or a login obtained in one browser cannot be injected into a flow another browser runs.
- The **completion handle**: the provider's callback hands the return URL a fresh random handle
  (``session_id``) and keeps only its digest; CompleteResourceTokenAuth accepts nothing else. The
  ``request_uri`` in authorization URLs only starts the browser flow, it completes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

COOKIE_PREFIX = "gatehouse_consent_"
SECURE_COOKIE_PREFIX = "__Host-gatehouse_consent_"  # https: only this host, Secure, Path=/


def new_secret() -> str:
    """A random value for a cookie or a handle (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """What is stored instead of a cookie value or handle: a leaked database does not complete anything."""
    return hashlib.sha256(value.encode()).hexdigest()


def matches(value: str | None, stored_digest: str | None) -> bool:
    return bool(value and stored_digest) and hmac.compare_digest(digest(value or ""), stored_digest or "")


def code_aad(state: str) -> str:
    """AES-GCM associated data of a session's sealed code."""
    return f"state:{state}:code"


def _secure(public_url: str) -> bool:
    return urlsplit(public_url).scheme == "https"


def cookie_name(public_url: str, session_uri: str) -> str:
    """One cookie per session, so two consents in two tabs of one browser do not disturb each other."""
    prefix = SECURE_COOKIE_PREFIX if _secure(public_url) else COOKIE_PREFIX
    return prefix + digest(session_uri)[:24]


def cookie_header(public_url: str, session_uri: str, value: str, max_age: int) -> str:
    """The ``Set-Cookie`` value: HttpOnly, SameSite=Lax (sent on the provider's top-level redirect
    back, not on cross-site subrequests), Secure and ``__Host-`` when identity is served over https."""
    parts = [
        f"{cookie_name(public_url, session_uri)}={value}",
        f"Max-Age={max(0, max_age)}",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if _secure(public_url):
        parts.append("Secure")
    return "; ".join(parts)
