"""OpenTelemetry tracing, the same in every service: off (no SDK loaded, one flag checked where a
span would start) unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
is set; then spans go to that OTLP/HTTP endpoint in batches, and the W3C ``traceparent`` travels
on HTTP headers, MCP ``params._meta`` and NATS message headers (docs/observability.md).

The exporter, sampler and batching read the standard ``OTEL_*`` variables themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate, trace

ENABLED = False
"""Set once by ``setup``; the hot paths check it before touching anything else of OpenTelemetry."""

tracer = trace.get_tracer("gatehouse")  # a proxy: real once ``setup`` installs the provider

ROOT_RATIO = 1.0
"""The share of requests without a client trace that start one (``OTEL_TRACES_SAMPLER``)."""

UNTRACED: ContextVar[bool] = ContextVar("gatehouse_untraced", default=False)
"""True inside a request the sampler left out: no span starts and no trace context travels on.
Deciding this before the SDK is asked is what makes a left-out request nearly free (about 1 µs
instead of the SDK's ~7 µs for a non-recording span; BENCHMARKS.md §10)."""


def traced() -> bool:
    """Spans are made here: tracing is on and this request was not left out by the sampler."""
    return ENABLED and not UNTRACED.get()


def setup(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the tracer provider with the OTLP exporter when an endpoint is configured."""
    global ENABLED
    env = os.environ if env is None else env
    if not (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if ENABLED:
        return True
    # only imported when used: the SDK and the exporter cost start-up time and memory
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": f"gatehouse-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _log_trace_ids()
    _root_ratio(env)
    ENABLED = True
    return True


def _root_ratio(env: Mapping[str, str]) -> None:
    """The SDK samples by the same variables; the gateway reads the root ratio to leave a request
    out before it makes any span for it."""
    global ROOT_RATIO
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    if sampler.endswith("always_off"):
        ROOT_RATIO = 0.0
    elif sampler.endswith("traceidratio"):
        try:
            ROOT_RATIO = min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG", "1"))))
        except ValueError:
            ROOT_RATIO = 1.0  # the SDK also falls back to 1.0 on a bad argument


def _log_trace_ids() -> None:
    """Give each log record the current trace id (``traceId`` of ``LOG_FORMAT=json``)."""
    make_record = logging.getLogRecordFactory()

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = make_record(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            made.trace_id = format(context.trace_id, "032x")
        return made

    logging.setLogRecordFactory(record)


def inject(carrier: MutableMapping[str, str]) -> None:
    """Put the current span's ``traceparent`` (and ``tracestate``) into headers or a ``_meta``."""
    propagate.inject(carrier)


@contextmanager
def client_span(name: str, **attributes: str) -> Iterator[None]:
    """A span around a call to another process (a target, identity), current while it runs."""
    with tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield
