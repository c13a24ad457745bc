"""Identity's composition root: ``build(settings)`` wires MongoDB, the bus, RPC subscribers, HTTP routes
into the ASGI app uvicorn serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from faststream.nats.annotations import NatsMessage
from starlette.responses import Response
from starlette.types import ASGIApp

from gatehouse_contracts import bus, rpc
from gatehouse_contracts.errors import GatehouseError, Unauthorized
from gatehouse_contracts.events import Event
from gatehouse_contracts.http import (
    ERROR_RESPONSES,
    AdminAuth,
    decode_body,
    document_bodies,
    json_response,
    read_body,
    service_app,
)
from gatehouse_contracts.jwt import JwtValidator
from gatehouse_contracts.mongo import connect
from gatehouse_contracts.netguard import EndpointGuard
from gatehouse_contracts.outbound import Limits
from gatehouse_contracts.subjects import RPC_QUEUE, rpc_caller, rpc_subject

from . import browser, metrics, vault_tokens, workload_auth
from .consenting_user import LOGIN_PATH
from .crypto import TokenSigner, Vault
from .deps import Caller, Deps
from .misses import MissAggregator
from .oauth import TokenEndpoint
from .operations import OPERATIONS, Operation
from .providers import Providers
from .settings import Settings
from .store import ProviderStore, SessionStore, TokenStore, WorkloadStore

log = logging.getLogger("gatehouse.identity")
SERVICES = ("gateway", "sync-worker")  # RPC callers with a narrower role than the admin


BROWSER_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "On to the provider, or back to the return URL"},
    400: {
        "description": "An invalid, used or expired link (a small HTML page)",
        "content": {"text/html": {}},
    },
}


def rpc_caller_of(subject: str) -> Caller:
    """The caller an RPC subject names (NATS permissions make that name true)."""
    name = rpc_caller(subject)
    if name in SERVICES:
        return Caller(privileged=True, service=name)
    return Caller(privileged=name == "admin", service=None if name == "admin" else name)


def _rpc_handler(deps: Deps, name: str, op: Operation) -> Any:
    ok = metrics.REQUESTS.labels(name, "ok")

    async def serve(msg: NatsMessage) -> bytes:
        try:
            req = msgspec.json.decode(msg.body, type=op.request)
            answer = rpc.encode(await op.handler(deps, req, rpc_caller_of(msg.raw_message.subject)))
            ok.inc()
            return answer
        except msgspec.ValidationError as exc:
            error = rpc.RpcError(code="ValidationException", message=f"invalid request: {exc}")
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            error = rpc.RpcError(code="ValidationException", message="the request is not valid JSON")
        except GatehouseError as exc:
            error = rpc.RpcError(code=exc.code, message=exc.message)
        metrics.REQUESTS.labels(name, error.code).inc()
        return rpc.encode(error)

    return serve


# msgspec's union tag (``"type": "<Struct name>"``) tells RPC replies from ``RpcError`` on the bus;
# the HTTP API has status codes for that and answers plain AgentCore-shaped bodies (``{}``, not
# ``{"type": "Completed"}``).
_TAGS = {cls.__name__ for pair in rpc.OPERATIONS.values() for cls in pair}


def _untagged(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untagged(v) for k, v in value.items() if not (k == "type" and v in _TAGS)}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


def _http_handler(settings: Settings, deps: Deps, auth: AdminAuth, op: Operation) -> Any:
    async def serve(request: Request) -> Response:
        privileged = await auth.is_admin(request)
        workload = None
        if not privileged and op.workload:
            workload = await workload_auth.authenticate(deps.workloads, request)
        elif op.admin and not privileged:
            raise Unauthorized("admin credentials required: send Authorization: Bearer <admin token>")
        req = decode_body(await read_body(request, settings.max_body_bytes), op.request)
        if workload is not None:
            workload_auth.check_for_itself(deps.signer, workload, req)
        answer = await op.handler(deps, req, Caller(privileged=privileged))
        body = _untagged(msgspec.to_builtins(answer))
        return json_response(body, 201 if op.created else 200, headers={"Cache-Control": "no-store"})

    return serve


def build(settings: Settings) -> ASGIApp:
    mongo = connect(settings.mongodb_url)
    db = settings.identity_db
    guard = EndpointGuard.from_settings(settings)
    http = guard.httpx_client(timeout=settings.identity_http_timeout_seconds)
    limits = Limits(settings.identity_http_timeout_seconds, settings.identity_http_max_bytes)
    broker = bus.make_broker(settings.nats_url, "identity", settings.nats_user, settings.nats_password)
    vault = Vault(settings.identity_vault_keys)
    provider_store = ProviderStore(mongo, db)

    async def publish(event: Event) -> None:
        try:
            await bus.publish_event(broker.connection, event)
        except GatehouseError as exc:  # the audit trail is best effort while NATS is down
            log.warning("could not publish %s: %s", type(event).__name__, exc.message)

    deps = Deps(
        settings=settings,
        http=http,
        workloads=WorkloadStore(mongo, db),
        providers=Providers(
            provider_store,
            vault,
            http,
            guard,
            settings.identity_public_url,
            limits,
            forget=lambda provider_id: vault_tokens.drop_provider(deps, provider_id),
        ),
        sessions=SessionStore(mongo, db),
        tokens=TokenStore(mongo, db),
        vault=vault,
        signer=TokenSigner(settings.identity_token_keys, settings.identity_workload_token_ttl_seconds),
        token_endpoint=TokenEndpoint(http, limits),
        jwt=JwtValidator(
            http,
            guard=guard,
            timeout=settings.identity_http_timeout_seconds,
            max_bytes=settings.identity_http_max_bytes,
        ),
        publish=MissAggregator(metrics.counted(publish), settings.identity_miss_events_interval_seconds),
    )
    admin_auth = AdminAuth.from_settings(settings, deps.jwt)
    for name, op in OPERATIONS.items():
        if op.rpc:
            broker.subscriber(rpc_subject(name, "*"), queue=RPC_QUEUE, title=name, description=op.summary)(
                _rpc_handler(deps, name, op)
            )

    async def purge_forever() -> None:
        while True:
            await asyncio.sleep(300)
            with contextlib.suppress(GatehouseError):
                await deps.sessions.purge_expired(time.time() - 3600)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        limits = bus.StreamLimits(
            settings.events_max_age_seconds, settings.events_max_bytes, settings.events_replicas
        )
        await bus.start_broker(broker, log, create=limits)
        await provider_store.create_indexes()
        await deps.sessions.create_indexes()
        purger = asyncio.create_task(purge_forever())
        log.info("identity ready on %s", settings.identity_public_url)
        yield
        purger.cancel()
        await broker.stop()
        await http.aclose()
        await guard.close()
        await mongo.close()

    app = service_app(
        "Gatehouse identity", lifespan, broker, mongo, scrapes=[metrics.vault_size(deps.tokens)]
    )

    @app.get("/identities/oauth2/authorize", responses=BROWSER_RESPONSES)
    async def authorize(request: Request) -> Response:
        """The browser starts a consent here: a 302 to the provider (PKCE S256, state)."""
        return await browser.authorize(deps, request)

    @app.get("/identities/oauth2/callback/{provider_id}", responses=BROWSER_RESPONSES)
    async def callback(request: Request, provider_id: str) -> Response:
        """The provider sends the browser back here: a 302 to the return URL with a completion handle."""
        return await browser.callback(deps, request, provider_id)

    @app.get(LOGIN_PATH, responses=BROWSER_RESPONSES)
    async def login_callback(request: Request) -> Response:
        """The users' own issuer sends the browser back here after identity's check of who consents."""
        return await browser.login_callback(deps, request)

    for name, op in OPERATIONS.items():
        app.add_api_route(
            op.path,
            _http_handler(settings, deps, admin_auth, op),
            methods=["POST"],
            name=name,
            summary=op.summary,
            status_code=201 if op.created else 200,
            responses=ERROR_RESPONSES,
        )
    document_bodies(app, {(op.path, "post"): op.request for op in OPERATIONS.values()})
    return app
