"""Identity's composition root: ``build(settings)`` wires MongoDB, the bus, RPC subscribers, HTTP routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from faststream.nats.annotations import NatsMessage
from starlette.responses import Response

from gatehouse_contracts import bus, rpc
from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.http import (
    TrailingSlash,
    check_admin,
    decode_body,
    gatehouse_error_handler,
    json_response,
    read_body,
)
from gatehouse_contracts.mongo import connect, ping
from gatehouse_contracts.subjects import RPC_QUEUE, rpc_subject

from .operations import OPERATIONS, Deps, Handler
from .settings import Settings
from .store import WorkloadStore

log = logging.getLogger("gatehouse.identity")


def _rpc_handler(deps: Deps, req_type: type[msgspec.Struct], handler: Handler) -> Any:
    async def serve(msg: NatsMessage) -> bytes:
        try:
            req = msgspec.json.decode(msg.body, type=req_type)
            return rpc.encode(await handler(deps, req))
        except msgspec.ValidationError as exc:
            return rpc.encode(rpc.RpcError(code="ValidationException", message=f"invalid request: {exc}"))
        except msgspec.DecodeError:
            return rpc.encode(
                rpc.RpcError(code="ValidationException", message="the request is not valid JSON")
            )
        except GatehouseError as exc:
            return rpc.encode(rpc.RpcError(code=exc.code, message=exc.message))

    return serve


def build(settings: Settings) -> FastAPI:
    mongo = connect(settings.mongodb_url)
    deps = Deps(workloads=WorkloadStore(mongo, settings.identity_db))
    broker = bus.make_broker(settings.nats_url)
    for name, (req_type, handler, summary) in OPERATIONS.items():
        broker.subscriber(rpc_subject(name), queue=RPC_QUEUE, title=name, description=summary)(
            _rpc_handler(deps, req_type, handler)
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        await bus.ensure_stream(
            broker.connection,
            max_age_seconds=settings.events_max_age_seconds,
            max_bytes=settings.events_max_bytes,
        )
        log.info("identity ready on %s", settings.identity_public_url)
        yield
        await broker.stop()
        await mongo.close()

    app = FastAPI(title="Gatehouse identity", lifespan=lifespan)
    app.add_exception_handler(GatehouseError, gatehouse_error_handler)
    app.add_middleware(TrailingSlash)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """NATS and MongoDB are reachable."""
        nats_ok = broker.connection is not None and broker.connection.is_connected
        mongo_ok = await ping(mongo)
        ok = nats_ok and mongo_ok
        return json_response({"nats": nats_ok, "mongodb": mongo_ok}, 200 if ok else 503)

    for name, (req_type, handler, summary) in OPERATIONS.items():
        app.add_api_route(
            f"/identities/{name}",
            _http_handler(settings, deps, req_type, handler),
            methods=["POST"],
            name=name,
            summary=summary,
        )
    return app


def _http_handler(settings: Settings, deps: Deps, req_type: type[msgspec.Struct], handler: Handler) -> Any:
    async def serve(request: Request) -> Response:
        check_admin(request, settings.gatehouse_admin_token)
        req = decode_body(await read_body(request, settings.max_body_bytes), req_type)
        status = 201 if req_type.__name__.startswith("Create") else 200
        return json_response(await handler(deps, req), status)

    return serve
