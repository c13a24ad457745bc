"""An OTLP/HTTP trace collector of our own (the protobuf wire format of the OpenTelemetry Collector's
``/v1/traces``), in this process: the services export their spans to it as to any collector, and a
test reads what arrived. Also runnable as a sink for the benchmarks: ``python -m harness.otlp PORT``.
"""

from __future__ import annotations

import gzip
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .procs import LOCALHOST


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int  # opentelemetry.proto SpanKind: 2 server, 3 client, 4 producer, 5 consumer
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, str]


class OtlpCollector:
    """``.url`` is what OTEL_EXPORTER_OTLP_ENDPOINT takes; ``.spans`` what was exported so far."""

    def __init__(self, port: int = 0, *, keep: bool = True) -> None:
        self.spans: list[Span] = []
        self.received = 0  # spans, also those not kept (keep=False: a sink that only counts)
        self._keep = keep
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector._receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((LOCALHOST, port), Handler)
        self.url = f"http://{LOCALHOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _receive(self, request: ExportTraceServiceRequest) -> None:
        got = []
        if not self._keep:
            with self._lock:
                self.received += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            return
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    got.append(
                        Span(
                            service=resource.get("service.name", ""),
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            attributes={a.key: a.value.string_value for a in s.attributes},
                        )
                    )
        with self._lock:
            self.spans.extend(got)
            self.received += len(got)

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    sink = OtlpCollector(int(sys.argv[1]) if len(sys.argv) > 1 else 0, keep=False)
    print(sink.url, flush=True)
    threading.Event().wait()
