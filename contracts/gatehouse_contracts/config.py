"""Settings from the environment, the same way in every service: a frozen Struct, one env var a field."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from . import tracing
from .errors import GatehouseError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

S = TypeVar("S", bound=msgspec.Struct)


class SettingsError(GatehouseError):
    """A setting is missing or malformed; the message names the variable."""


def load_settings(cls: type[S], env: Mapping[str, str] | None = None) -> S:
    """Fill ``cls`` from variables named like its fields in upper case (``nats_url`` <- ``NATS_URL``)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = field.name.upper()
        if name in env and env[name] != "":
            raw[field.name] = env[name]
        elif field.required:
            raise SettingsError(f"{name} must be set")
    try:
        return msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"bad setting: {exc}") from None


def csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``LOG_FORMAT=json``): what log collectors parse without rules."""

    _encoder = msgspec.json.Encoder()

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if trace_id := getattr(record, "trace_id", None):
            line["traceId"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(line).decode()


def configure_logging(level: str, service: str, log_format: str = "text") -> None:
    """Logging to stdout: ``text`` lines for people (the default), or ``json`` lines for collectors."""
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # one line per HTTP request or bus message is noise at INFO; our own loggers say what matters
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_http(
    service: str,
    load: Callable[[], Any],
    build: Callable[[Any], ASGIApp],
    *,
    host_attr: str,
    port_attr: str,
    workers_attr: str = "",
    factory: str = "",
) -> None:
    """A service's ``main``: settings from the environment (exit with the reason if bad), logging,
    uvicorn serving the ASGI app ``build(settings)`` returns. When the setting ``workers_attr`` is > 1,
    uvicorn runs that many processes, each building its app with the ``factory``
    (``module:function``); they behave like replicas on one port."""
    import uvicorn  # only the entry points need the server

    try:
        settings = load()
    except (SettingsError, ValueError) as exc:
        sys.exit(f"gatehouse-{service}: {exc}")
    try:
        configure_logging(settings.log_level, service, settings.log_format)
    except SettingsError as exc:
        sys.exit(f"gatehouse-{service}: {exc}")
    tracing.setup(service)
    host, port = getattr(settings, host_attr), getattr(settings, port_attr)
    workers = getattr(settings, workers_attr) if workers_attr else 1
    if workers > 1 and factory:
        uvicorn.run(
            factory, factory=True, workers=workers, host=host, port=port, log_config=None, access_log=False
        )
        return
    uvicorn.run(build(settings), host=host, port=port, log_config=None, access_log=False)


class AdminSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The admin credentials every admin API (gateway, identity) accepts."""

    gatehouse_admin_token: str
    admin_jwt_discovery_url: str = ""
    admin_jwt_audience: str = ""
    admin_jwt_claim: str = "scope"
    admin_jwt_value: str = "gatehouse:admin"

    def __post_init__(self) -> None:
        # without an audience, any token the issuer hands out for another application (with the
        # same scope or role) would open the admin APIs
        if self.admin_jwt_discovery_url and not self.admin_jwt_audience.strip():
            raise ValueError("ADMIN_JWT_AUDIENCE must be set when ADMIN_JWT_DISCOVERY_URL is")
