"""The gateway's composition root: ``build(settings)`` wires MongoDB, the bus, the catalog and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from starlette.responses import Response

from gatehouse_contracts import bus
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.config import configure_logging
from gatehouse_contracts.errors import GatehouseError, NotFound, Unavailable
from gatehouse_contracts.events import (
    Event,
    GatewayCreated,
    GatewayDeleted,
    GatewayUpdated,
    TargetDeleted,
    TokenRevoked,
    decode_event,
)
from gatehouse_contracts.http import (
    ERROR_RESPONSES,
    AdminAuth,
    document_bodies,
    json_response,
    service_app,
)
from gatehouse_contracts.jwt import IssuerUnavailable, JwtValidator
from gatehouse_contracts.mcp_client import McpHttp
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.netguard import EndpointGuard
from gatehouse_contracts.subjects import CATALOG_SUBJECTS, EVENTS_PREFIX, MCP_SESSION_ENDED
from gatehouse_contracts.target_auth import m2m_headers

from . import gateways
from .catalog import Catalog, RoutedTarget
from .fast_path import McpFastPath
from .gateways import Ctx
from .mcp_endpoint import McpConfig, McpEndpoint
from .routes import BODIES, router
from .sessions import EndedSessions, SessionClaims
from .settings import Settings
from .store import Store
from .upstream import UpstreamPool
from .user_auth import Inbound, UserTokens

log = logging.getLogger("gatehouse.gateway")


def build(settings: Settings) -> McpFastPath:
    mongo = connect(settings.mongodb_url)
    store = Store(mongo, settings.gatehouse_db)
    guard = EndpointGuard.from_settings(settings)
    catalog = Catalog(store)
    http = guard.httpx_client(timeout=settings.gateway_upstream_timeout_seconds)  # JWKS fetches
    mcp_http = McpHttp(  # upstream MCP calls
        max_connections=settings.gateway_max_connections,
        max_per_host=settings.gateway_max_connections_per_target,
        max_response_bytes=settings.gateway_max_upstream_response_bytes,
        guard=guard,
    )

    async def target_headers(target: RoutedTarget) -> dict[str, str]:
        if target.oauth is None:
            return {}
        return await m2m_headers(identity, target.gateway_id, target.oauth, target.endpoint)

    upstream = UpstreamPool(
        mcp_http,
        settings.gateway_upstream_timeout_seconds,
        target_headers,
        max_sessions=settings.gateway_max_upstream_sessions,
    )
    ended = EndedSessions(
        settings.gateway_session_max_age_seconds, settings.gateway_max_ended_sessions_per_user
    )
    background: set[asyncio.Task[None]] = set()

    async def reload_ended_sessions() -> None:
        try:
            ended.load(await store.ended_sessions_now(time.time()))
        except GatehouseError as exc:
            log.warning("could not read the ended MCP sessions: %s", exc.message)

    async def reconnected() -> None:
        _spawn(background, catalog.reload_all())
        _spawn(background, reload_ended_sessions())  # broadcasts missed while cut off

    broker = bus.make_broker(
        settings.nats_url, "gateway", settings.nats_user, settings.nats_password, reconnected_cb=reconnected
    )
    identity = IdentityClient(lambda: broker.connection, "gateway", settings.identity_rpc_timeout_seconds)
    user_tokens = UserTokens(identity)

    async def apply_change(event: Event) -> None:
        """Bring this replica's catalog up to date with one catalog-change event."""
        if isinstance(event, (GatewayCreated, GatewayUpdated, GatewayDeleted)):
            await catalog.reload_gateway(event.gateway_id)
            return
        gateway_id, target_id = event.gateway_id, event.target_id  # type: ignore[attr-defined]
        if isinstance(event, TargetDeleted):
            await catalog.drop_target(gateway_id, target_id)
        else:
            await catalog.reload_target(gateway_id, target_id)
        if not _keeps_sessions(event):
            await upstream.forget(target_id)
            user_tokens.forget_target(target_id)

    async def on_catalog_event(msg: NatsMessage) -> None:
        """Refresh this replica's catalog."""
        try:
            event = decode_event(msg.body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return
        try:
            await apply_change(event)
        except GatehouseError as exc:
            log.warning("catalog refresh failed (%s); the periodic reload will retry", exc.message)

    # no_reply: an event published to JetStream carries the publisher's ack inbox as reply subject;
    # an (empty) answer from us would race JetStream's ack and break the publish.
    broker.subscriber(CATALOG_SUBJECTS[0], title="catalog: gateways", no_reply=True)(on_catalog_event)
    broker.subscriber(CATALOG_SUBJECTS[1], title="catalog: targets", no_reply=True)(_copy(on_catalog_event))

    @broker.subscriber(f"{EVENTS_PREFIX}.identity.token_revoked", title="token revoked", no_reply=True)
    async def on_token_revoked(msg: NatsMessage) -> None:
        """Forget what this replica kept of a user's tokens once identity dropped one."""
        try:
            event = decode_event(msg.body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return
        if isinstance(event, TokenRevoked) and event.user_id.startswith("jwt:"):
            user_tokens.forget_user(event.workload_name, event.user_id.removeprefix("jwt:"))

    @broker.subscriber(MCP_SESSION_ENDED, title="MCP session ended", no_reply=True)
    async def on_session_ended(msg: NatsMessage) -> None:
        """Forget a session another replica ended."""
        try:
            claims = msgspec.json.decode(msg.body, type=SessionClaims)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return
        ended.end(claims)

    async def store_ended_session(nonce: str, expires_at: float) -> None:
        try:
            await store.end_session(nonce, expires_at)
        except GatehouseError as exc:
            log.warning(
                "ended MCP session not stored (a replica started later may accept it): %s", exc.message
            )

    async def session_ended(claims: SessionClaims, expires_at: float) -> None:
        """Tell the running replicas at once, and keep it for replicas started later (in the
        background: a DELETE does not wait for MongoDB)."""
        with contextlib.suppress(Exception):
            await broker.connection.publish(MCP_SESSION_ENDED, msgspec.json.encode(claims))
        _spawn(background, store_ended_session(claims.nonce, expires_at))

    def publish_tool_invoked(event: Event) -> None:
        _spawn(background, _publish_quietly(broker, event))

    async def changed(gateway_id: str, target_id: str | None) -> None:
        if target_id is None:
            await catalog.reload_gateway(gateway_id)
        else:
            await catalog.reload_target(gateway_id, target_id)
            await upstream.forget(target_id)
            user_tokens.forget_target(target_id)

    jwt = JwtValidator(
        http,
        guard=guard,
        timeout=settings.gateway_upstream_timeout_seconds,
        max_bytes=settings.gateway_jwks_max_bytes,
    )
    inbound = Inbound(jwt)
    ctx = Ctx(
        store=store,
        broker=broker,
        public_url=settings.gateway_public_url,
        identity=identity,
        guard=guard,
        jwt=jwt,
        changed=changed,
    )
    config = McpConfig(
        secret=settings.gatehouse_session_secret.encode(),
        public_url=settings.gateway_public_url,
        allowed_origins=settings.allowed_origins,
        page_size=settings.gateway_tools_page_size,
        session_max_age=settings.gateway_session_max_age_seconds,
        max_body_bytes=settings.max_body_bytes,
        on_session_ended=session_ended,
        on_tool_invoked=publish_tool_invoked,
    )
    endpoint = McpEndpoint(catalog, upstream, ended, inbound, user_tokens, config)

    async def refresh_forever() -> None:
        while True:
            await asyncio.sleep(settings.gateway_catalog_refresh_seconds)
            try:
                await catalog.reload_all()
            except GatehouseError as exc:
                log.warning("periodic catalog reload failed: %s", exc.message)
            except Exception:  # a background loop must not die quietly
                log.exception("periodic catalog reload failed unexpectedly")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bus.start_broker(broker, log)
        await store.create_indexes()
        await catalog.reload_all()
        await reload_ended_sessions()
        refresher = asyncio.create_task(refresh_forever())
        log.info("gateway ready on %s", settings.gateway_public_url)
        yield
        refresher.cancel()
        await upstream.close()
        await mcp_http.close()
        await broker.stop()
        await http.aclose()
        await guard.close()
        await mongo.close()

    app = service_app("Gatehouse gateway", lifespan, broker, mongo)
    app.include_router(router(ctx, AdminAuth.from_settings(settings, jwt), settings.max_body_bytes))
    document_bodies(app, BODIES)

    @app.get("/.well-known/oauth-protected-resource/gateways/{gateway_id}/mcp", responses=ERROR_RESPONSES)
    async def protected_resource_metadata(gateway_id: str) -> Response:
        """RFC 9728 metadata of a CUSTOM_JWT gateway's MCP endpoint: where its users get tokens."""
        cat = catalog.gateways.get(gateway_id)
        if cat is None or cat.gateway["authorizerType"] != "CUSTOM_JWT":
            raise NotFound(f"gateway {gateway_id!r} has no protected-resource metadata")
        try:
            issuer = await inbound.issuer(cat.gateway)
        except IssuerUnavailable as exc:
            raise Unavailable(f"the gateway's token issuer is unavailable: {exc}") from None
        config = cat.gateway["authorizerConfiguration"]["customJWTAuthorizer"]
        metadata: dict[str, Any] = {
            "resource": gateways.gateway_url(ctx, gateway_id),
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": cat.gateway["name"],
        }
        if config.get("allowedScopes"):
            metadata["scopes_supported"] = config["allowedScopes"]
        return json_response(metadata)

    return McpFastPath(app, endpoint)


def _keeps_sessions(event: Event) -> bool:
    """Status-only events leave the target's endpoint as it was, so pooled sessions stay useful."""
    return type(event).__name__ in ("TargetSynchronized", "TargetSyncFailed", "TargetAuthorizationRequired")


def _copy(fn: Any) -> Any:
    """The same handler as a distinct function object, so a second subscriber can take it."""

    async def handler(msg: NatsMessage) -> None:
        await fn(msg)

    handler.__doc__ = fn.__doc__
    return handler


def _spawn(tasks: set[asyncio.Task[None]], coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _publish_quietly(broker: NatsBroker, event: Event) -> None:
    try:
        await bus.publish_event_nowait(broker.connection, event)
    except GatehouseError as exc:
        log.warning("could not publish %s: %s", type(event).__name__, exc.message)


def from_env() -> McpFastPath:
    """One worker process's app (``GATEWAY_WORKERS`` > 1): settings and logging from the environment."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, "gateway")
    return build(settings)
