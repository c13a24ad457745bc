"""The ``requestState`` of an MRTR round (patterns/mrtr, "Server Requirements"): a consent the
gateway asked for, or a target's own request for input passed on to the client (the target's
``requestState`` sealed inside ours, to be handed back to it on the retry).

The state passes through the client, so it is attacker-controlled input: it is sealed with an HMAC
under a key derived from the gateway's secret (every replica opens what any of them sealed) and
binds who asked (gateway, principal), what was asked (method, tool, a digest of the arguments),
the consent session identity started, and an expiry. Any other state — forged, altered, stale, of
another user, tool, gateway or arguments — is refused with -32602 and changes nothing.

A consent's state says only which consent to wait for; whether the user has a token is always asked of
identity, so replaying a state (within its lifetime, for the same call) gains nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import msgspec

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.jsonrpc import JsonRpcError

from .sessions import b64, sign, unb64

MAX_LENGTH = 64 * 1024  # ours; a target's own state is limited to MAX_UPSTREAM_LENGTH inside it
MAX_UPSTREAM_LENGTH = 32 * 1024
_sorted = msgspec.json.Encoder(order="sorted")


class ConsentState(msgspec.Struct, frozen=True, array_like=True):
    gateway: str
    principal: str
    method: str
    tool: str
    arguments: str  # sha256 of the arguments, keys sorted
    session: str  # identity's consent session (its request_uri); "" when the target asked
    url: str  # the URL the user was sent to
    expires: float
    target_asked: bool = False  # the target asked for input (its requestState is ``upstream``)
    upstream: str | None = None


def arguments_digest(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(_sorted.encode(arguments)).hexdigest()


def _invalid(why: str) -> JsonRpcError:
    return JsonRpcError(jsonrpc.INVALID_PARAMS, f"Invalid params: requestState {why}")


class RequestStates:
    def __init__(self, secret: bytes, lifetime: float) -> None:
        self._key = hmac.new(secret, b"gatehouse MRTR requestState", hashlib.sha256).digest()
        self.lifetime = lifetime

    def seal(self, state: ConsentState) -> str:
        payload = b64(msgspec.json.encode(state))
        return f"{payload}.{sign(self._key, payload)}"

    def new(
        self,
        *,
        gateway: str,
        principal: str,
        method: str,
        tool: str,
        arguments: dict[str, Any],
        session: str = "",
        url: str = "",
        target_asked: bool = False,
        upstream: str | None = None,
    ) -> str:
        expires = time.time() + self.lifetime
        digest = arguments_digest(arguments)
        return self.seal(
            ConsentState(
                gateway, principal, method, tool, digest, session, url, expires, target_asked, upstream
            )
        )

    def open(
        self, token: Any, *, gateway: str, principal: str, method: str, tool: str, arguments: dict[str, Any]
    ) -> ConsentState:
        """The state, if we sealed it, it has not expired, and it belongs to exactly this request."""
        if not isinstance(token, str) or len(token) > MAX_LENGTH or not token.isascii():
            raise _invalid("is not one this gateway issued")
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, sign(self._key, payload)):
            raise _invalid("is not one this gateway issued")
        try:
            state = msgspec.json.decode(unb64(payload), type=ConsentState)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            raise _invalid("is not one this gateway issued") from None
        if state.expires <= time.time():
            raise _invalid("has expired: call the tool again without it")
        if (state.gateway, state.principal, state.method, state.tool) != (gateway, principal, method, tool):
            raise _invalid("belongs to another request")
        if not hmac.compare_digest(state.arguments, arguments_digest(arguments)):
            raise _invalid("belongs to other arguments")
        return state
