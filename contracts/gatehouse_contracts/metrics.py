"""Prometheus metrics every service shares: ``/metrics`` on its HTTP port, the bus's counters.

Each service process keeps its metrics in the client library's default registry (module-level
metrics, one process = one scrape target). Labels are bounded: subjects, operations, gateway and
target ids (bounded by the configuration), outcomes; never a user, a token or a session.
Values that live in MongoDB (vault size, pending consents) are counted when scraped.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterator, Sequence

from fastapi import FastAPI
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
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


class LoopHistogram(Collector):
    """A labelled histogram for the request path, observed from the event loop's thread only.

    ``prometheus_client``'s ``Histogram`` takes a lock per bucket and one for the sum on every
    ``observe`` (about 0.5 µs, a tenth of the gateway's own time on a tools/list): here a child is a
    list of counts and a sum, ``observe`` one ``bisect`` and two additions (about 0.1 µs,
    BENCHMARKS.md §10). A scrape (another thread, or the loop) reads the counts as they are: a
    bucket and the count may disagree by the observations made meanwhile, as between two scrapes.
    """

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self._name, self._doc, self._labels = name, documentation, list(labels)
        self._bounds = list(buckets)
        self._children: dict[tuple[str, ...], LoopHistogram.Child] = {}
        REGISTRY.register(self)

    class Child:
        __slots__ = ("bounds", "counts", "sum")

        def __init__(self, bounds: list[float]) -> None:
            self.bounds = bounds
            self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
            self.sum = 0.0

        def observe(self, value: float) -> None:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.sum += value

    def labels(self, *values: str) -> LoopHistogram.Child:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = LoopHistogram.Child(self._bounds)
        return child

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labels)
        bounds = [*map(floatToGoString, self._bounds), "+Inf"]
        for values, child in list(self._children.items()):
            cumulative = list(itertools.accumulate(child.counts))
            family.add_metric(list(values), list(zip(bounds, cumulative, strict=True)), child.sum)
        yield family


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
