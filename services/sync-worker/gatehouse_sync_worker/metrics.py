"""The sync-worker's Prometheus metrics: syncs (target events and resumed consents) by outcome and
duration, redeliveries, dead letters; pending consents are counted from MongoDB when scraped.
Labels are bounded: the kind of work and its outcome, never a target or a user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

from gatehouse_contracts.lifecycle import PENDING
from gatehouse_contracts.metrics import LATENCY_BUCKETS

from .store import TargetStore

SYNCS = Histogram(
    "gatehouse_sync_duration_seconds",
    "Deliveries handled, by kind (target: a target event; consent: a sync resumed after a consent) "
    "and outcome (done; retry: asked to run again later; postponed: MongoDB, NATS or identity was "
    "down; dead_letter: given up)",
    ["kind", "outcome"],
    buckets=LATENCY_BUCKETS,
)
REDELIVERIES = Counter(
    "gatehouse_sync_redeliveries_total",
    "Events delivered again (a retry, an outage, a dead worker)",
    ["kind"],
)
DEAD_LETTERS = Counter("gatehouse_sync_dead_letters_total", "Events given up after every delivery", ["kind"])
PENDING_CONSENTS = Gauge(
    "gatehouse_sync_pending_consents", "Targets waiting for an admin's consent (from MongoDB when scraped)"
)


def pending_consents(store: TargetStore) -> Callable[[], Awaitable[None]]:
    async def scrape() -> None:
        PENDING_CONSENTS.set(await store.count_with_status(PENDING))

    return scrape
