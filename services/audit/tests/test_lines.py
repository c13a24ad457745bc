"""tail's output: one line per record, or the event's JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gatehouse_audit.lines import TYPE_WIDTH, format_json, format_line
from gatehouse_audit.records import record
from gatehouse_contracts.events import (
    AuthorizationFailed,
    Event,
    GatewayCreated,
    TargetSyncFailed,
    TargetSynchronized,
    TokenIssued,
    ToolInvoked,
    encode_event,
)

WHEN = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
STAMP = "2025-06-01T12:00:00.123Z"


def _doc(event: Event) -> dict:
    return record(
        encode_event(event), subject="gatehouse.events.x", stream_seq=1, published_at=WHEN, stored_at=WHEN
    )


def _common() -> dict:
    return {"event_id": "e1", "occurred_at": WHEN, "source": "test"}


def test_tool_invoked_shows_who_outcome_and_duration() -> None:
    event = ToolInvoked(
        **_common(),
        gateway_id="gw-1",
        target_id="T1",
        tool="echo",
        user="iss#alice",
        outcome="success",
        duration_ms=12.345,
    )
    line = format_line(_doc(event))
    assert line == (
        f"{STAMP} {'tool.invoked'.ljust(TYPE_WIDTH)} gateway=gw-1 target=T1 user=iss#alice "
        "tool=echo outcome=success duration=12.3ms"
    )


def test_pymongo_naive_utc_times_print_the_same() -> None:
    doc = _doc(GatewayCreated(**_common(), gateway_id="gw-1", name="team"))
    doc["occurredAt"] = WHEN.replace(tzinfo=None)
    assert format_line(doc) == f"{STAMP} {'gateway.created'.ljust(TYPE_WIDTH)} gateway=gw-1 name=team"


def test_target_events_show_tool_count_and_failure_reason() -> None:
    synced = format_line(
        _doc(TargetSynchronized(**_common(), gateway_id="g", target_id="T", generation=2, tool_count=5))
    )
    assert synced.endswith("gateway=g target=T generation=2 tools=5")
    failed = format_line(
        _doc(
            TargetSyncFailed(
                **_common(),
                gateway_id="g",
                target_id="T",
                generation=1,
                reason="Target unreachable: cannot connect",
                attempt=3,
                terminal=True,
            )
        )
    )
    assert failed.endswith('attempt=3 terminal=yes reason="Target unreachable: cannot connect"')


def test_identity_events_show_workload_provider_and_reason() -> None:
    issued = format_line(
        _doc(
            TokenIssued(
                **_common(), workload_name="gw-1", user_id="u1", provider_name="sso", scopes=["a", "b"]
            )
        )
    )
    assert "identity.token_issued" in issued
    assert issued.endswith("user=u1 workloadName=gw-1 providerName=sso scopes=a,b")
    refused = format_line(
        _doc(AuthorizationFailed(**_common(), reason="user_mismatch", workload_name="gw-1"))
    )
    assert refused.endswith(
        "identity.authorization_failed".ljust(TYPE_WIDTH) + " reason=user_mismatch workloadName=gw-1"
    )
    summary = format_line(_doc(AuthorizationFailed(**_common(), reason="unknown_session", count=49)))
    assert summary.endswith(" reason=unknown_session count=49")


def test_undecodable_shows_subject_error_and_a_preview() -> None:
    doc = record(
        b"junk\n\x00\x1b[31m" + b"x" * 500,
        subject="gatehouse.events.odd.thing",
        stream_seq=4,
        published_at=WHEN,
        stored_at=WHEN,
    )
    line = format_line(doc)
    assert "\n" not in line and line.isprintable()
    assert line.startswith(f"{STAMP} undecodable")
    assert "subject=gatehouse.events.odd.thing" in line and "error=" in line
    assert len(line) < 400
    about = json.loads(format_json(doc))
    assert about["type"] == "undecodable" and about["raw"].startswith("junk\n")


def test_json_is_the_event_as_it_travelled_one_line_each() -> None:
    event = GatewayCreated(**_common(), gateway_id="gw-1", name="team")
    assert format_json(_doc(event)) == encode_event(event).decode()
    pretty = json.dumps(json.loads(encode_event(event)), indent=2).encode()
    doc = record(
        pretty, subject="gatehouse.events.gateway.created", stream_seq=1, published_at=WHEN, stored_at=WHEN
    )
    assert "\n" not in format_json(doc)
    assert json.loads(format_json(doc)) == json.loads(pretty)


def test_unknown_future_types_still_print() -> None:
    doc = {"type": "gateway.renamed", "occurredAt": WHEN, "gatewayId": "g", "raw": "{}"}
    assert format_line(doc) == f"{STAMP} {'gateway.renamed'.ljust(TYPE_WIDTH)} gateway=g"
