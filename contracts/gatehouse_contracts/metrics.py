"""Prometheus metrics every service shares: ``/metrics`` on its HTTP port, the bus's counters.

Each service process keeps its metrics in the client library's default registry (module-level
metrics, one process = one scrape target). Labels are bounded: subjects, operations, gateway and
target ids (bounded by the configuration), outcomes; never a user, a token or a session.
Values that live in MongoDB (vault size, pending consents) are counted when scraped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.responses import Response

from .errors import GatehouseError

# from half a millisecond (a tools/list from memory) to half a minute (a slow target)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Scrape = Callable[[], Awaitable[None]]
"""Brings gauges whose value lives elsewhere (MongoDB) up to date just before a scrape."""

BUS_PUBLISHED = Counter(
    "gatehouse_bus_published_messages_total",
    "Messages this service published with nats-py directly (events, identity RPC requests); "
    "FastStream's own publishes and consumes are the faststream_* metrics",
    ["subject"],
)
RPC_DURATION = Histogram(
    "gatehouse_bus_rpc_duration_seconds",
    "Identity RPC round trips as the calling service sees them",
    ["operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)


def bus_middleware(service: str) -> NatsPrometheusMiddleware:
    """FastStream's NATS middleware: faststream_received_messages_total, _published_, durations,
    by subject (bounded: event types and identity operations)."""
    return NatsPrometheusMiddleware(registry=REGISTRY, app_name=service)


def add_metrics_route(app: FastAPI, scrapes: Sequence[Scrape] = ()) -> None:
    """``GET /metrics`` in the Prometheus text format. A scrape whose source is down (MongoDB)
    leaves its gauge at the last value rather than failing the whole scrape."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        for scrape in scrapes:
            with contextlib.suppress(GatehouseError):
                await scrape()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
