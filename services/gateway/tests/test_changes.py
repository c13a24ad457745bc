"""Which catalog events reload what, and which also drop a target's pooled sessions and tokens."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_contracts.events import (
    Event,
    GatewayCreated,
    GatewayDeleted,
    GatewayUpdated,
    TargetAuthorizationRequired,
    TargetCreated,
    TargetDeleted,
    TargetSyncFailed,
    TargetSynchronized,
    TargetSyncRequested,
    TargetUpdated,
    new_event,
)
from gatehouse_gateway.changes import Replica, apply_event


class Recorder:
    """Stands in for the catalog, the upstream pool and the user tokens: records what is called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> Any:
            self.calls.append((name, *args))
            if name == "forget_target":  # UserTokens.forget_target is synchronous
                return None

            async def done() -> None:
                return None

            return done()

        return record


def _replica() -> tuple[Replica, Recorder]:
    recorder = Recorder()
    return Replica(recorder, recorder, recorder, recorder), recorder  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [(GatewayCreated, {"name": "n"}), (GatewayUpdated, {"name": "n"}), (GatewayDeleted, {})],
)
async def test_a_gateway_event_reloads_the_gateway(kind: type[Event], fields: dict[str, Any]) -> None:
    replica, recorder = _replica()
    await apply_event(replica, new_event(kind, source="test", gateway_id="g", **fields))
    assert recorder.calls == [("reload_gateway", "g")]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [(TargetCreated, {}), (TargetUpdated, {}), (TargetSyncRequested, {"request_id": "r"})],
)
async def test_a_target_change_reloads_it_and_drops_its_sessions_and_tokens(
    kind: type[Event], fields: dict[str, Any]
) -> None:
    replica, recorder = _replica()
    event = new_event(kind, source="test", gateway_id="g", target_id="t", generation=2, **fields)
    await apply_event(replica, event)
    assert recorder.calls == [("reload_target", "g", "t"), ("forget", "t"), ("forget_target", "t")]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (TargetSynchronized, {"tool_count": 1}),
        (TargetSyncFailed, {"reason": "x", "attempt": 1, "terminal": False}),
        (TargetAuthorizationRequired, {"user_id": "admin"}),
    ],
)
async def test_a_status_change_keeps_the_targets_sessions(kind: type[Event], fields: dict[str, Any]) -> None:
    replica, recorder = _replica()
    event = new_event(kind, source="test", gateway_id="g", target_id="t", generation=2, **fields)
    await apply_event(replica, event)
    assert recorder.calls == [("reload_target", "g", "t")]


async def test_a_deleted_target_leaves_the_catalog_and_the_pool() -> None:
    replica, recorder = _replica()
    await apply_event(replica, new_event(TargetDeleted, source="test", gateway_id="g", target_id="t"))
    assert recorder.calls == [("drop_target", "g", "t"), ("forget", "t"), ("forget_target", "t")]
