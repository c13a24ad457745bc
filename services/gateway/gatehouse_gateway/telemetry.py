"""The gateway's telemetry: Prometheus metrics (MCP requests, tool calls, the catalog's size) and,
when tracing is on, a span per MCP request.

Label values are bounded by the configuration: a gateway id only once the catalog knows it (any
other path says ``unknown``), a method only from the known ones (else ``other``), a target id from
the gateway's targets. Never a user, a session or a token.

The request path binds each label combination's child once and keeps it (``McpMetrics``), so a
request costs two clock reads, one tuple, one dict lookup and one histogram observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import random
from typing import Any

from opentelemetry import context, propagate, trace
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Scope

from gatehouse_contracts import tracing
from gatehouse_contracts.events import ToolInvoked
from gatehouse_contracts.metrics import LATENCY_BUCKETS, LoopHistogram

from .catalog import Catalog

METHOD = "gatehouse.method"
"""Scope key: the JSON-RPC method of a request, set by the MCP endpoint once it knows it is one it serves."""
JSONRPC_ERROR = "gatehouse.jsonrpc_error"
"""Scope key: set when the answer is a JSON-RPC error (which may travel in an HTTP 200)."""
SPAN = "gatehouse.span"
"""Scope key: the request's span and the context token to detach, when tracing is on."""

REQUESTS = LoopHistogram(
    "gatehouse_mcp_request_duration_seconds",
    "MCP requests on /gateways/{id}/mcp until the answer is ready (its _count is the request count), "
    "by gateway, JSON-RPC method and outcome (ok, jsonrpc_error, client_error, server_error)",
    ["gateway", "method", "outcome"],
    LATENCY_BUCKETS,
)
TOOL_CALLS = LoopHistogram(
    "gatehouse_tool_call_duration_seconds",
    "tools/call from the call to the target's answer (token from identity included), by gateway, "
    "target and outcome (the audit event's: success, tool_error, upstream_error, "
    "authorization_required, unreachable)",
    ["gateway", "target", "outcome"],
    LATENCY_BUCKETS,
)


class McpMetrics:
    """The MCP endpoint's histograms; with ``enabled`` False (``GATEWAY_METRICS_ENABLED``) nothing
    is counted and a request only ends its span."""

    def __init__(self, catalog: Catalog, *, enabled: bool = True) -> None:
        self._catalog = catalog
        self._requests: dict[tuple[str, str, str], LoopHistogram.Child] = {}
        self._calls: dict[tuple[str, str, str], LoopHistogram.Child] = {}
        self.enabled = enabled
        if not enabled:
            self.request = self._span_only  # type: ignore[method-assign]

    def _span_only(self, scope: Scope, gateway_id: str, status: int, seconds: float) -> None:
        if SPAN in scope:
            _end_span(scope, status, _outcome(scope, status))

    def request(self, scope: Scope, gateway_id: str, status: int, seconds: float) -> None:
        outcome = _outcome(scope, status)
        key = (
            gateway_id if gateway_id in self._catalog.gateways else "unknown",
            scope.get(METHOD, "other"),
            outcome,
        )
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = REQUESTS.labels(*key)
        child.observe(seconds)
        if SPAN in scope:
            _end_span(scope, status, outcome)

    def tool_invoked(self, publish: Callable[[ToolInvoked], None]) -> Callable[[ToolInvoked], None]:
        """``publish`` (the audit event's), counting the call first."""
        if not self.enabled:
            return publish

        def observed(event: ToolInvoked) -> None:
            key = (event.gateway_id, event.target_id, event.outcome)
            child = self._calls.get(key)
            if child is None:
                child = self._calls[key] = TOOL_CALLS.labels(*key)
            child.observe(event.duration_ms / 1000)
            publish(event)

        return observed


def _outcome(scope: Scope, status: int) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "jsonrpc_error" if JSONRPC_ERROR in scope else "ok"


def seen(scope: Scope, method: str, params: dict[str, Any]) -> None:
    """An MCP request of a method the gateway serves: label its metrics with it and, when tracing
    is on, start its span (ended by ``McpMetrics.request`` once the answer is ready)."""
    scope[METHOD] = method
    if tracing.ENABLED:
        _start_span(scope, method, params)


def _start_span(scope: Scope, method: str, params: dict[str, Any]) -> None:
    """The client's trace continues from ``params._meta`` (where the MCP SDK puts it) or else the
    ``traceparent`` HTTP header."""
    meta = params.get("_meta")
    carrier: dict[str, str] = {}
    if isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
        carrier = {k: v for k in ("traceparent", "tracestate") if isinstance(v := meta.get(k), str)}
    else:
        for name, value in scope["headers"]:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
    if not carrier and tracing.ROOT_RATIO < 1.0 and random() >= tracing.ROOT_RATIO:  # noqa: S311 - sampling, not secrecy
        # a new trace the sampler leaves out: decided here, no span. A tools/call, the one method
        # that calls other processes (target, identity), also tells them not to trace (the context
        # variable costs a request ~1 µs; the others skip it: BENCHMARKS.md §10)
        scope[SPAN] = (None, tracing.UNTRACED.set(True) if method == "tools/call" else None)
        return
    gateway_id = scope["path_params"]["gateway_id"]
    span = tracing.tracer.start_span(
        method,
        context=propagate.extract(carrier) if carrier else None,  # None: a new trace
        kind=trace.SpanKind.SERVER,
        attributes={"mcp.method.name": method, "gatehouse.gateway_id": gateway_id},
    )
    scope[SPAN] = (span, context.attach(trace.set_span_in_context(span)))


def _end_span(scope: Scope, status: int, outcome: str) -> None:
    span, token = scope.pop(SPAN)
    if span is None:
        if token is not None:
            tracing.UNTRACED.reset(token)
        return
    span.set_attribute("http.response.status_code", status)
    if outcome != "ok":
        span.set_status(trace.StatusCode.ERROR, outcome)
    span.end()
    context.detach(token)


class CatalogCollector(Collector):
    """The catalog's size, read from memory when scraped (nothing to update on the hot path). One
    per process, registered once; it reads the catalog ``build`` gave it last."""

    catalog: Catalog | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tools = GaugeMetricFamily("gatehouse_catalog_tools", "Tools a gateway serves", labels=["gateway"])
        targets = GaugeMetricFamily(
            "gatehouse_catalog_targets", "A gateway's targets by status", labels=["gateway", "status"]
        )
        gateways = self.catalog.gateways if self.catalog is not None else {}
        for gateway_id, cat in list(gateways.items()):
            tools.add_metric([gateway_id], len(cat.tools))
            statuses: dict[str, int] = {}
            for target in cat.targets.values():
                statuses[target.status.status] = statuses.get(target.status.status, 0) + 1
            for status, count in statuses.items():
                targets.add_metric([gateway_id, status], count)
        yield tools
        yield targets


CATALOG = CatalogCollector()
REGISTRY.register(CATALOG)
