"""``LoopHistogram`` exposes exactly what ``prometheus_client``'s ``Histogram`` would for the same
observations (pure logic)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest

from gatehouse_contracts.metrics import LATENCY_BUCKETS, LoopHistogram


def _samples(text: str, name: str) -> list[str]:
    return [
        line.replace(name, "m")
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith(f"{name}_created")
    ]


def test_the_exposition_is_the_client_librarys() -> None:
    registry = CollectorRegistry()
    reference = Histogram("ref_seconds", "doc", ["a"], buckets=LATENCY_BUCKETS, registry=registry)
    ours = LoopHistogram("loop_test_seconds", "doc", ["a"], LATENCY_BUCKETS)
    try:
        for label, value in [
            ("x", 0.0001),
            ("x", 0.0005),
            ("x", 0.0007),
            ("y", 0.003),
            ("x", 0.2),
            ("y", 40.0),
        ]:
            reference.labels(label).observe(value)
            ours.labels(label).observe(value)
        expected = _samples(generate_latest(registry).decode(), "ref_seconds")
        assert _samples(generate_latest(REGISTRY).decode(), "loop_test_seconds") == expected
        assert 'm_bucket{a="x",le="0.0005"} 2.0' in expected  # a value on a bound is in its bucket
    finally:
        REGISTRY.unregister(ours)
