"""The gateway's composition root: ``build(settings)`` wires MongoDB, the bus, the catalog and the routes
into the ASGI app uvicorn serves (the MCP fast path in front of FastAPI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

from gatehouse_contracts import bus, tracing
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.config import configure_logging
from gatehouse_contracts.http import AdminAuth, document_bodies, service_app
from gatehouse_contracts.jwt import JwtValidator
from gatehouse_contracts.mcp_client import McpHttp
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.netguard import EndpointGuard

from . import routes
from .background import Background
from .catalog import Catalog
from .changes import Replica
from .deps import Deps
from .fast_path import McpFastPath
from .mcp_endpoint import McpConfig, McpEndpoint
from .modern import ModernConfig
from .search import HttpEmbedder
from .sessions import EndedSessions
from .settings import Settings
from .store import Store
from .subscribers import subscribers
from .telemetry import CATALOG, McpMetrics
from .tool_events import ToolEvents
from .tool_search import Semantic
from .upstream import UpstreamPool, client_credentials
from .user_auth import Inbound, UserTokens
from .waiters import Waiters

log = logging.getLogger("gatehouse.gateway")


def build(settings: Settings) -> ASGIApp:
    mongo = connect(settings.mongodb_url)
    store = Store(mongo, settings.gatehouse_db)
    guard = EndpointGuard.from_settings(settings)
    http = guard.httpx_client(timeout=settings.gateway_upstream_timeout_seconds)  # JWKS fetches
    embeddings = _embeddings_client(settings)
    semantic = (
        None
        if embeddings is None
        else Semantic(
            HttpEmbedder(
                embeddings, settings.gateway_search_embeddings_url, settings.gateway_search_embeddings_model
            ),
            settings.gateway_search_embeddings_timeout_seconds,
        )
    )
    catalog = Catalog(store, semantic)
    metrics = McpMetrics(catalog, enabled=settings.gateway_metrics_enabled)
    CATALOG.catalog = catalog
    ended = EndedSessions(
        settings.gateway_session_max_age_seconds, settings.gateway_max_ended_sessions_per_user
    )
    background = Background(store, catalog, ended, lambda: broker.connection)
    tool_events = ToolEvents(lambda: broker.connection)
    broker = bus.make_broker(
        settings.nats_url,
        "gateway",
        settings.nats_user,
        settings.nats_password,
        reconnected_cb=background.reconnected,
    )
    identity = IdentityClient(lambda: broker.connection, "gateway", settings.identity_rpc_timeout_seconds)
    mcp_http = McpHttp(  # upstream MCP calls
        max_connections=settings.gateway_max_connections,
        max_per_host=settings.gateway_max_connections_per_target,
        max_response_bytes=settings.gateway_max_upstream_response_bytes,
        guard=guard,
    )
    upstream = UpstreamPool(
        mcp_http,
        settings.gateway_upstream_timeout_seconds,
        client_credentials(identity),
        max_sessions=settings.gateway_max_upstream_sessions,
    )
    replica = Replica(catalog, upstream, UserTokens(identity), ended, Waiters())
    broker.include_router(subscribers(replica))
    jwt = JwtValidator(
        http,
        guard=guard,
        timeout=settings.gateway_upstream_timeout_seconds,
        max_bytes=settings.gateway_jwks_max_bytes,
    )
    inbound = Inbound(jwt)
    deps = Deps(
        store=store,
        broker=broker,
        public_url=settings.gateway_public_url,
        identity=identity,
        guard=guard,
        jwt=jwt,
        changed=replica.changed,
    )
    config = McpConfig(
        secret=settings.gatehouse_session_secret.encode(),
        public_url=settings.gateway_public_url,
        allowed_origins=settings.allowed_origins,
        page_size=settings.gateway_tools_page_size,
        session_max_age=settings.gateway_session_max_age_seconds,
        max_body_bytes=settings.max_body_bytes,
        on_session_ended=background.session_ended,
        on_request_cancelled=background.request_cancelled,
        in_flight=replica.in_flight,
        on_tool_invoked=metrics.tool_invoked(tool_events.publish),
        modern=ModernConfig(
            # the longest a replica's catalog may lag a change whose event it missed (docs/mcp-clients.md)
            ttl_ms=int(settings.gateway_catalog_refresh_seconds * 1000),
            consent_wait=settings.gateway_consent_wait_seconds,
            keepalive=settings.gateway_sse_keepalive_seconds,
        ),
        waiters=replica.consents,
        semantic=semantic,
    )
    endpoint = McpEndpoint(catalog, upstream, ended, inbound, replica.user_tokens, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bus.start_broker(broker, log)
        await store.create_indexes()
        await catalog.reload_all()
        await background.reload_ended_sessions()
        refresher = asyncio.create_task(background.refresh_forever(settings.gateway_catalog_refresh_seconds))
        publisher = asyncio.create_task(tool_events.run())
        log.info("gateway ready on %s", settings.gateway_public_url)
        yield
        refresher.cancel()
        publisher.cancel()
        await tool_events.close()  # the last calls' events, before the connection closes
        await upstream.close()
        await mcp_http.close()
        await broker.stop()
        await http.aclose()
        if embeddings is not None:
            await embeddings.aclose()
        await guard.close()
        await mongo.close()

    # ready = can serve MCP: it does from memory while MongoDB or NATS is down (docs/admin-api.md)
    app = service_app("Gatehouse gateway", lifespan, broker, mongo, serving=lambda: catalog.loaded)
    app.include_router(routes.router(deps, AdminAuth.from_settings(settings, jwt), settings.max_body_bytes))
    app.include_router(routes.metadata(deps, catalog, inbound))
    document_bodies(app, routes.BODIES)
    return McpFastPath(app, endpoint, metrics)


def from_env() -> ASGIApp:
    """One worker process's app (``GATEWAY_WORKERS`` > 1): settings and logging from the environment."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, "gateway", settings.log_format)
    tracing.setup("gateway")
    return build(settings)


def _embeddings_client(settings: Settings) -> httpx.AsyncClient | None:
    """The client of the operator's embedding service, if one is set. It is the operator's own
    service, often on a private network: not held to the targets' network guard."""
    if not settings.gateway_search_embeddings_url:
        return None
    headers = {}
    if settings.gateway_search_embeddings_api_key:
        headers["Authorization"] = f"Bearer {settings.gateway_search_embeddings_api_key}"
    timeout = max(settings.gateway_search_embeddings_timeout_seconds, 30.0)  # a batch of tools takes longer
    return httpx.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False)
