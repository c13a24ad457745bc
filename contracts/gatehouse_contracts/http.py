"""HTTP plumbing the gateway and identity share: error answers, bodies decoded into Structs, admin auth."""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from .errors import BadRequest, GatehouseError, PayloadTooLarge, Unauthorized
from .jwt import InvalidToken, IssuerUnavailable, JwtValidator
from .metrics import Scrape, add_metrics_route
from .mongo import ping

T = TypeVar("T")
log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(content), status_code=status, media_type="application/json", headers=headers
    )


def error_response(exc: GatehouseError) -> Response:
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)


async def gatehouse_error_handler(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatehouseError):  # registered for GatehouseError only
        raise exc
    if exc.status >= 500:
        log.warning("request failed: %s", exc.message)
    return error_response(exc)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(body: bytes, type_: type[T]) -> T:
    """Strictly decode a JSON body into ``type_``; every fault is a 400 that names the field."""
    if not body.strip():
        raise BadRequest("the request needs a JSON body")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("the body is not valid JSON") from None
    except UnicodeDecodeError:  # msgspec's answer to invalid UTF-8 inside a JSON string
        raise BadRequest("the body is not valid JSON: a string is not UTF-8") from None
    except RecursionError:
        raise BadRequest("the body nests JSON too deeply") from None


class AdminAuth:
    """Who may call the admin APIs: the static token (``GATEHOUSE_ADMIN_TOKEN``, constant-time compare),
    or, when configured, a JWT of the admin issuer whose ``claim`` holds ``value`` (a scope or a role)."""

    def __init__(
        self,
        token: str,
        jwt: JwtValidator | None = None,
        *,
        discovery_url: str = "",
        audience: str = "",
        claim: str = "scope",
        value: str = "gatehouse:admin",
    ) -> None:
        self._token = token.encode()
        self._jwt = jwt if discovery_url else None
        self._discovery_url = discovery_url
        self._audience = audience
        self._claim = claim
        self._value = value

    async def is_admin(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        if hmac.compare_digest(token.encode(), self._token):
            return True
        if self._jwt is None or token.count(".") != 2:
            return False
        try:
            claims = await self._jwt.validate(
                token, discovery_url=self._discovery_url, audiences=[self._audience] if self._audience else []
            )
        except (InvalidToken, IssuerUnavailable):
            return False
        held = claims.get(self._claim)
        values = held.split() if isinstance(held, str) else held if isinstance(held, list) else []
        return self._value in values

    @classmethod
    def from_settings(cls, settings: Any, jwt: JwtValidator) -> AdminAuth:
        """From a service's ``AdminSettings`` fields."""
        return cls(
            settings.gatehouse_admin_token,
            jwt,
            discovery_url=settings.admin_jwt_discovery_url,
            audience=settings.admin_jwt_audience,
            claim=settings.admin_jwt_claim,
            value=settings.admin_jwt_value,
        )

    async def check(self, request: Request) -> None:
        if not await self.is_admin(request):
            raise Unauthorized(
                "admin credentials required: send Authorization: Bearer <admin token or admin JWT>"
            )


def page_token(last_id: str | None) -> str | None:
    """An opaque ``nextToken`` that continues after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode() if last_id else None


def parse_page(
    max_results: int | None, next_token: str | None, *, limit: int = 1000
) -> tuple[int, str | None]:
    """Validated (page size, id to continue after) from ``maxResults`` and ``nextToken``."""
    size = 100 if max_results is None else max_results
    if not 1 <= size <= limit:
        raise BadRequest(f"maxResults must be between 1 and {limit}")
    if not next_token:
        return size, None
    try:
        after = base64.b64decode(next_token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeError):
        after = ""
    if not after:
        raise BadRequest("nextToken is not a token this API handed out")
    return size, after


class TrailingSlash:
    """ASGI middleware: ``/a/b/`` is served as ``/a/b`` (trailing slashes optional, no redirects)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/", "raw_path": None}
        await self.app(scope, receive, send)


HEADER_LIMIT = 16 * 1024


class HeaderLimit:
    """ASGI middleware: a request whose headers exceed ``limit`` bytes in all gets 431, unread."""

    def __init__(self, app: Any, limit: int = HEADER_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) for k, v in scope["headers"]) > self.limit:
            body = _encoder.encode(
                {
                    "error": {
                        "code": "RequestHeaderFieldsTooLarge",
                        "message": f"the request headers exceed {self.limit} bytes",
                    }
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 431,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in (
        (400, "Bad input: the message names the field"),
        (401, "Missing or wrong credentials"),
        (403, "Not allowed"),
        (404, "No such resource"),
        (409, "The resource's state forbids it now"),
        (413, "The body is too large"),
        (431, "The headers are too large"),
        (503, "A dependency (NATS, MongoDB, identity, a provider) is unavailable; retry"),
    )
}


async def validation_error_handler(_: Request, exc: Exception) -> Response:
    """FastAPI's own parameter validation answers like every other bad input: 400, our error shape."""
    errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors[:3]) or "the request"
    return error_response(BadRequest(f"invalid request: check {where}"))


def document_bodies(app: Any, bodies: dict[tuple[str, str], type[Any]]) -> None:
    """Put the msgspec-decoded request bodies of (path, method) into the app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema  # type: ignore[no-any-return]
        doc: dict[str, Any] = original()
        types = list(dict.fromkeys(bodies.values()))
        schemas, components = msgspec.json.schema_components(
            types, ref_template="#/components/schemas/{name}"
        )
        doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
        for (path, method), type_ in bodies.items():
            operation = doc["paths"][path][method]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas[types.index(type_)]}},
            }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi


def service_app(
    title: str,
    lifespan: Any,
    broker: Any,
    mongo: Any,
    *,
    scrapes: Sequence[Scrape] = (),
    serving: Callable[[], bool] | None = None,
) -> FastAPI:
    """The FastAPI app every service starts from: our error answers, the header limit, optional
    trailing slashes, ``/healthz`` (the process is up), ``/readyz`` and ``/metrics`` (Prometheus,
    after running ``scrapes``). ``/readyz`` is 200 when NATS and MongoDB are reachable, or, for a
    service that serves without them (the gateway, from memory), when ``serving()`` is true; its
    body says which dependency is down either way."""
    app = FastAPI(title=title, lifespan=lifespan)
    app.add_exception_handler(GatehouseError, gatehouse_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(TrailingSlash)
    app.add_middleware(HeaderLimit)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "not ready: the body says what is missing"}})
    async def readyz() -> Response:
        """Ready to serve (docs/admin-api.md, Health, says what each service needs)."""
        nats_ok = broker.connection is not None and broker.connection.is_connected
        mongo_ok = await ping(mongo)
        if serving is None:
            return json_response({"nats": nats_ok, "mongodb": mongo_ok}, 200 if nats_ok and mongo_ok else 503)
        ready = serving()
        return json_response({"serving": ready, "nats": nats_ok, "mongodb": mongo_ok}, 200 if ready else 503)

    add_metrics_route(app, scrapes)
    return app
