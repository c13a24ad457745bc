"""The request span's sampling decision, made before the SDK is asked (pure logic, no exporter)."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_contracts import tracing
from gatehouse_gateway import telemetry


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio"),
    [
        ("parentbased_always_on", "", 1.0),
        ("always_off", "", 0.0),
        ("parentbased_traceidratio", "0.25", 0.25),
        ("traceidratio", "7", 1.0),
        ("parentbased_traceidratio", "x", 1.0),
    ],
)
def test_root_ratio_follows_the_sdk_variables(monkeypatch: Any, sampler: str, arg: str, ratio: float) -> None:
    monkeypatch.setattr(tracing, "ROOT_RATIO", 1.0)
    tracing._root_ratio({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg})
    assert tracing.ROOT_RATIO == ratio


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"headers": headers, "path_params": {"gateway_id": "g"}}


def test_a_left_out_request_makes_no_span_and_passes_nothing_on(monkeypatch: Any) -> None:
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "ROOT_RATIO", 0.0)
    scope = _scope([])
    telemetry.seen(scope, "tools/call", {})
    span, _ = scope[telemetry.SPAN]
    assert span is None and not tracing.traced()  # no client spans, no traceparent to targets
    telemetry._end_span(scope, 200, "ok")
    assert tracing.traced() and telemetry.SPAN not in scope


def test_a_client_trace_is_followed_whatever_the_root_ratio(monkeypatch: Any) -> None:
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "ROOT_RATIO", 0.0)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    scope = _scope([(b"traceparent", parent.encode())])
    telemetry.seen(scope, "tools/list", {})
    span, _ = scope[telemetry.SPAN]
    assert span is not None and tracing.traced()  # the SDK's parent-based sampler decides
    telemetry._end_span(scope, 200, "ok")
