"""The MCP endpoint ``/gateways/{gatewayId}/mcp``: Streamable HTTP (2025-11-25), JSON answers only.

One endpoint, two eras: after the gateway, Origin and the caller's token are checked, a request whose
``MCP-Protocol-Version`` is absent or of the handshake era takes this module's path; any other goes
to ``modern.ModernEndpoint`` (2026-07-28, or -32022 naming the versions served).

Order of checks for a POST: gateway exists, Origin, Content-Type, Accept, body size, JSON-RPC shape,
method known, MCP-Protocol-Version, session; then dispatch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.errors import GatehouseError, PayloadTooLarge
from gatehouse_contracts.events import ToolInvoked, ToolOutcome, new_event
from gatehouse_contracts.http import read_body
from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_contracts.jwt import IssuerUnavailable
from gatehouse_contracts.mcp_client import (
    NO_OPTIONS,
    CallOptions,
    ProgressCallback,
    ToolResult,
    UpstreamUnauthorized,
)

from . import call_errors, sessions, tool_search
from .call_stream import Answer, CallStream
from .catalog import Catalog, Cursors, GatewayCatalog, RoutedTarget
from .elicitation import authorization_required, tool_call
from .errors import McpHttpError
from .in_flight import CancelledRequest, InFlight
from .json_parts import JsonParts
from .modern import ModernConfig, ModernEndpoint, without_token
from .modern_rules import HANDSHAKE_VERSIONS
from .sessions import EndedSessions, SessionClaims, bind
from .telemetry import JSONRPC_ERROR, seen
from .upstream import UpstreamPool
from .user_auth import AuthorizationRequired, Inbound, Unauthenticated, User, UserTokens
from .waiters import Waiters

log = logging.getLogger("gatehouse.gateway.mcp")

SERVER_INFO = {"name": "gatehouse", "version": "0.1.0"}
KNOWN_METHODS = frozenset({"initialize", "ping", "tools/list", "tools/call"})
JSON = "application/json"
REQUEST_CANCELLED = -32800  # the answer to a request the client cancelled (the SDK's server's too)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _no_request_cancelled(request: CancelledRequest) -> None:
    return None


async def _no_session_ended(claims: SessionClaims, expires_at: float) -> None:
    return None


def _no_tool_invoked(event: ToolInvoked) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class McpConfig:
    """What the MCP endpoint is told rather than given: its secret, URL, limits and two hooks."""

    secret: bytes  # signs session ids and tools/list cursors
    public_url: str
    allowed_origins: Sequence[str]
    page_size: int
    session_max_age: float
    max_body_bytes: int
    on_session_ended: Callable[[SessionClaims, float], Awaitable[None]] = _no_session_ended
    """Tell the other replicas (claims, when the session would have expired anyway)."""
    on_tool_invoked: Callable[[ToolInvoked], None] = _no_tool_invoked
    """Publish the audit event of one tools/call; must not block."""
    modern: ModernConfig = ModernConfig(ttl_ms=30_000, consent_wait=300.0, keepalive=15.0)
    waiters: Waiters | None = None  # woken by identity's events (subscribers.py)
    in_flight: InFlight | None = None  # this replica's calls, cancelled by its clients or by the bus
    on_request_cancelled: Callable[[CancelledRequest], Awaitable[None]] = _no_request_cancelled
    """Tell the other replicas of a cancellation naming no call running here."""
    semantic: tool_search.Semantic | None = None  # the search tool's embedding service, if any


class McpEndpoint:
    def __init__(
        self,
        catalog: Catalog,
        upstream: UpstreamPool,
        ended: EndedSessions,
        inbound: Inbound,
        user_tokens: UserTokens,
        config: McpConfig,
    ) -> None:
        self.catalog = catalog
        self.upstream = upstream
        self.ended = ended
        self.inbound = inbound
        self.user_tokens = user_tokens
        # copied into attributes: the hot path reads them without a second lookup
        self.public_url = config.public_url.rstrip("/")
        self.secret = config.secret
        self.cursors = Cursors(config.secret)
        self.origins = {_origin(config.public_url), *(_origin(o) for o in config.allowed_origins)}
        self.page_size = config.page_size
        self.semantic = config.semantic
        self.session_max_age = config.session_max_age
        self.max_body_bytes = config.max_body_bytes
        self.on_session_ended = config.on_session_ended
        self.on_tool_invoked = config.on_tool_invoked
        self.in_flight = config.in_flight if config.in_flight is not None else InFlight()
        self.on_request_cancelled = config.on_request_cancelled
        self.modern = ModernEndpoint(
            self,
            SERVER_INFO,
            config.waiters if config.waiters is not None else Waiters(),
            config.modern,
        )

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            cat = self._gateway(request)
            self._check_origin(request)
            user = await self._authenticate(request, cat)
            version = request.headers.get("mcp-protocol-version")
            if version is not None and version not in HANDSHAKE_VERSIONS:
                return await self.modern.handle(request, cat, user, version)
            if request.method == "POST":
                return await self._post(request, cat, user, version)
            if request.method == "DELETE":
                return await self._delete(request, cat, user)
            raise McpHttpError(
                405,
                "Method Not Allowed: this endpoint has no SSE stream; POST requests",
                {"Allow": "POST, DELETE"},
            )
        except McpHttpError as exc:
            body = jsonrpc.error(None, jsonrpc.INVALID_REQUEST, exc.message)
            return Response(body, exc.status, media_type=JSON, headers=exc.headers)

    def _gateway(self, request: Request) -> GatewayCatalog:
        gateway_id = request.path_params["gateway_id"]
        cat = self.catalog.gateways.get(gateway_id)
        if cat is None:
            raise McpHttpError(404, f"Not Found: no gateway {gateway_id!r}")
        return cat

    def _check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            raise McpHttpError(403, "Forbidden: this Origin is not allowed")

    def resource_metadata_url(self, gateway_id: str) -> str:
        return f"{self.public_url}/.well-known/oauth-protected-resource/gateways/{gateway_id}/mcp"

    async def _authenticate(self, request: Request, cat: GatewayCatalog) -> User | None:
        """The caller of a CUSTOM_JWT gateway (401 with the RFC 9728 pointer when missing or bad)."""
        if cat.gateway["authorizerType"] != "CUSTOM_JWT":
            return None
        try:
            return await self.inbound.authenticate(cat.gateway, request.headers.get("authorization", ""))
        except Unauthenticated as exc:
            metadata = self.resource_metadata_url(cat.gateway["_id"])
            challenge = f'Bearer resource_metadata="{metadata}"'
            if exc.invalid:
                challenge = f'Bearer error="invalid_token", resource_metadata="{metadata}"'
            raise McpHttpError(401, f"Unauthorized: {exc}", {"WWW-Authenticate": challenge}) from None
        except IssuerUnavailable:
            raise McpHttpError(
                503, "Service Unavailable: the token issuer cannot be reached; retry"
            ) from None

    def _session(self, request: Request, cat: GatewayCatalog, user: User | None) -> SessionClaims:
        token = request.headers.get("mcp-session-id")
        if not token:
            raise McpHttpError(
                400, "Bad Request: the Mcp-Session-Id header is required; send initialize first"
            )
        claims = sessions.verify(self.secret, token, self.session_max_age)
        return bind(claims, cat.gateway["_id"], user.key if user else "", self.ended)

    def _check_version(self, version: str | None, cat: GatewayCatalog) -> None:
        if (
            version is not None
            and version not in cat.gateway["protocolConfiguration"]["mcp"]["supportedVersions"]
        ):
            raise McpHttpError(400, f"Bad Request: unsupported MCP-Protocol-Version {version[:40]!r}")

    async def _delete(self, request: Request, cat: GatewayCatalog, user: User | None) -> Response:
        claims = self._session(request, cat, user)
        if self.ended.full(claims):
            raise McpHttpError(
                429,
                "Too Many Requests: this user has ended too many sessions lately; "
                "the session stays valid until it expires",
            )
        await self.on_session_ended(claims, self.ended.end(claims))
        return Response(status_code=204)

    async def _post(
        self, request: Request, cat: GatewayCatalog, user: User | None, version: str | None
    ) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != JSON:
            raise McpHttpError(415, "Unsupported Media Type: send Content-Type: application/json")
        accept = request.headers.get("accept")
        if accept is not None and not (JSON in accept or "*/*" in accept or "application/*" in accept):
            raise McpHttpError(406, "Not Acceptable: the client must accept application/json")
        try:
            body = await read_body(request, self.max_body_bytes)
        except PayloadTooLarge as exc:
            raise McpHttpError(413, f"Payload Too Large: {exc.message}") from None
        try:
            msg = jsonrpc.parse_message(body)
        except JsonRpcError as exc:
            return Response(jsonrpc.error(exc.id, exc.code, exc.message), 400, media_type=JSON)
        if isinstance(msg, jsonrpc.Request) and msg.method not in KNOWN_METHODS:
            request.scope[JSONRPC_ERROR] = True
            return self._json(
                jsonrpc.error(msg.id, jsonrpc.METHOD_NOT_FOUND, f"Method not found: {msg.method[:100]}")
            )
        if isinstance(msg, jsonrpc.Request):
            seen(request.scope, msg.method, msg.params)  # its metrics' label, its span
        self._check_version(version, cat)
        if isinstance(msg, jsonrpc.Request) and msg.method == "initialize":
            return self._initialize(msg, cat, user)
        claims = self._session(request, cat, user)
        if not isinstance(msg, jsonrpc.Request):
            if isinstance(msg, jsonrpc.Notification) and msg.method == "notifications/cancelled":
                request_id = msg.params.get("requestId")
                if isinstance(request_id, str | int) and not self.in_flight.cancel(claims.nonce, request_id):
                    # the call may run on another replica behind the same address: tell them
                    await self.on_request_cancelled(CancelledRequest(claims.nonce, request_id))
            return Response(status_code=202)  # notifications and answers need no reply
        try:
            if msg.method == "tools/call" and accept is not None and "text/event-stream" in accept:
                meta = msg.params.get("_meta")
                if isinstance(meta, dict) and "progressToken" in meta:
                    work = partial(self._streamed_call, msg, cat, claims, user)
                    return CallStream(work, meta["progressToken"], cancel_on_disconnect=False)
            return await self._dispatch(msg, cat, claims, user)
        except JsonRpcError as exc:
            request.scope[JSONRPC_ERROR] = True
            return self._json(jsonrpc.error(msg.id, exc.code, exc.message, exc.data))

    @staticmethod
    def _json(body: bytes, headers: dict[str, str] | None = None) -> Response:
        return JsonParts([body], headers)

    # -- JSON-RPC --------------------------------------------------------------------------

    def _initialize(self, msg: jsonrpc.Request, cat: GatewayCatalog, user: User | None) -> Response:
        supported: list[str] = cat.gateway["protocolConfiguration"]["mcp"]["supportedVersions"]
        requested = msg.params.get("protocolVersion")
        if not isinstance(requested, str):
            return self._json(
                jsonrpc.error(msg.id, jsonrpc.INVALID_PARAMS, "Invalid params: protocolVersion is required")
            )
        version = requested if requested in supported else supported[0]
        token = sessions.issue(self.secret, cat.gateway["_id"], version, user.key if user else "")
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
        }
        if instructions := cat.gateway["protocolConfiguration"]["mcp"].get("instructions"):
            result["instructions"] = instructions
        return self._json(jsonrpc.result(msg.id, result), {"Mcp-Session-Id": token})

    async def _dispatch(
        self, msg: jsonrpc.Request, cat: GatewayCatalog, claims: SessionClaims, user: User | None
    ) -> Response:
        if msg.method == "ping":
            return self._json(jsonrpc.result(msg.id, {}))
        if msg.method == "tools/list":
            return self._tools_list(msg, cat)
        if cat.searchable and msg.params.get("name") == tool_search.NAME:
            found = await tool_search.call(cat.search, msg.params.get("arguments", {}), self.semantic)
            return self._json(jsonrpc.raw_result(msg.id, found))
        return self._json(jsonrpc.raw_result(msg.id, await self._tools_call(msg, cat, claims, user)))

    def _tools_list(self, msg: jsonrpc.Request, cat: GatewayCatalog) -> Response:
        cursor = msg.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: cursor must be a string")
        try:
            answer = cat.answer(cursor, self.page_size, self.cursors)
        except ValueError:
            raise JsonRpcError(
                jsonrpc.INVALID_PARAMS,
                "Invalid params: unknown cursor (use the nextCursor of this gateway's last tools/list page)",
            ) from None
        return JsonParts([answer, msgspec.json.encode(msg.id) + b"}"])

    async def _streamed_call(
        self,
        msg: jsonrpc.Request,
        cat: GatewayCatalog,
        claims: SessionClaims,
        user: User | None,
        on_progress: ProgressCallback | None,
    ) -> Answer:
        """A tools/call whose progress the client gets on an SSE answer (``call_stream``)."""
        try:
            result = await self._tools_call(msg, cat, claims, user, on_progress)
            return 200, jsonrpc.raw_result(msg.id, result)
        except JsonRpcError as exc:
            return 200, jsonrpc.error(msg.id, exc.code, exc.message, exc.data)

    async def _tools_call(
        self,
        msg: jsonrpc.Request,
        cat: GatewayCatalog,
        claims: SessionClaims,
        user: User | None,
        on_progress: ProgressCallback | None = None,
    ) -> bytes:
        """The encoded result object: the target's, passed through, or our own. While it runs, the
        client's notifications/cancelled for it cancels it (``InFlight``)."""
        name, arguments, meta, override, target, tool = tool_call(msg.params, msg.params.get("_meta"), cat)
        started = time.perf_counter()
        outcome: ToolOutcome = "success"
        options = NO_OPTIONS
        if on_progress is not None:
            meta, options = without_token(meta), CallOptions(on_progress)
        key = self.in_flight.add(claims.nonce, msg.id)
        try:
            result = await self._call(target, tool, arguments, meta, user, override, options)
            if result.is_error:
                outcome = "tool_error"
            return result.raw
        except AuthorizationRequired as exc:
            outcome = "authorization_required"
            return authorization_required(target.name, exc.url, exc.elicitation_id, claims.protocol_version)
        except call_errors.CAUGHT as exc:
            outcome, error = call_errors.translate(exc, target.name)
            raise error from None
        except asyncio.CancelledError:
            outcome = "upstream_error"
            if self.in_flight.cancelled(key):  # by the client: its request is answered, as the SDK does
                raise JsonRpcError(REQUEST_CANCELLED, "Request cancelled") from None
            raise
        finally:
            self.in_flight.done(key)
            self.on_tool_invoked(
                new_event(
                    ToolInvoked,
                    source="gateway",
                    gateway_id=cat.gateway["_id"],
                    target_id=target.target_id,
                    tool=tool,
                    user=claims.user,
                    outcome=outcome,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            )

    async def _call(
        self,
        target: RoutedTarget,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, Any] | None,
        user: User | None,
        override: dict[str, Any],
        options: CallOptions = NO_OPTIONS,
    ) -> ToolResult:
        if not target.user_auth:
            return await self.upstream.call_tool(target, tool, arguments, meta, options=options)
        if user is None:
            raise GatehouseError("this target acts for a user, but the gateway has no user authorizer")
        return_url, force = override.get("returnUrl"), bool(override.get("forceAuthentication"))
        token = await self.user_tokens.token_for(target, user, return_url=return_url, force=force)
        try:
            return await self.upstream.call_tool(
                target,
                tool,
                arguments,
                meta,
                user=user.key,
                headers={"Authorization": f"Bearer {token}"},
                options=options,
            )
        except UpstreamUnauthorized:
            # the target refused the stored token: identity drops it and starts a new consent
            await self.user_tokens.token_for(target, user, return_url=return_url, force=True)
            raise GatehouseError("identity handed out a token the target refused") from None
