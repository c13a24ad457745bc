"""What the audit subscriber stores for each message of the stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gatehouse_audit.records import record
from gatehouse_contracts.events import (
    AuthorizationFailed,
    GatewayCreated,
    TokenIssued,
    ToolInvoked,
    encode_event,
    new_event,
)

PUBLISHED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
STORED = datetime(2025, 6, 1, 12, 0, 1, tzinfo=UTC)


def _record(data: bytes, seq: int = 7, subject: str = "gatehouse.events.x.y") -> dict:
    return record(data, subject=subject, stream_seq=seq, published_at=PUBLISHED, stored_at=STORED)


def test_an_event_is_stored_under_its_id_with_its_fields_queryable() -> None:
    event = new_event(
        ToolInvoked,
        source="gateway",
        correlation_id="c1",
        gateway_id="gw-1",
        target_id="T1",
        tool="echo",
        user="https://idp#alice",
        outcome="success",
        duration_ms=12.5,
    )
    data = encode_event(event)
    doc = _record(data, subject="gatehouse.events.tool.invoked")
    assert doc["_id"] == doc["eventId"] == event.event_id
    assert doc["type"] == "tool.invoked"
    assert doc["occurredAt"] == event.occurred_at and isinstance(doc["occurredAt"], datetime)
    assert (doc["source"], doc["correlationId"]) == ("gateway", "c1")
    assert (doc["gatewayId"], doc["targetId"], doc["user"]) == ("gw-1", "T1", "https://idp#alice")
    assert (doc["tool"], doc["outcome"], doc["durationMs"]) == ("echo", "success", 12.5)
    assert doc["raw"] == data.decode()
    assert doc["audit"] == {"subject": "gatehouse.events.tool.invoked", "streamSeq": 7, "storedAt": STORED}


def test_identity_events_name_their_user_as_user() -> None:
    issued = new_event(
        TokenIssued, source="identity", workload_name="gw-1", user_id="u-9", provider_name="p", scopes=["a"]
    )
    doc = _record(encode_event(issued))
    assert doc["user"] == doc["userId"] == "u-9"
    assert doc["workloadName"] == "gw-1" and "gatewayId" not in doc

    # no user to name: no user field
    failed = new_event(AuthorizationFailed, source="identity", reason="unknown_session")
    assert "user" not in _record(encode_event(failed))


def test_a_redelivery_gives_the_same_record_id() -> None:
    data = encode_event(new_event(GatewayCreated, source="gateway", gateway_id="g", name="n"))
    assert _record(data, seq=3)["_id"] == _record(data, seq=99)["_id"]  # published twice: one event


def test_undecodable_messages_are_kept() -> None:
    for data in (b"not json", b'{"type": "no.such_event", "eventId": "x"}', b"\xff\xfe"):
        doc = _record(data, seq=11)
        assert doc["type"] == "undecodable"
        assert doc["occurredAt"] == PUBLISHED  # when the stream got it
        assert doc["error"]
        assert doc["raw"] == data.decode("utf-8", errors="replace")
        assert doc["_id"].startswith("undecodable-11-")
        assert _record(data, seq=11)["_id"] == doc["_id"]  # redelivered: stored once
    assert _record(b"a", seq=1)["_id"] != _record(b"b", seq=1)["_id"]
    assert _record(b"a", seq=1)["_id"] != _record(b"a", seq=2)["_id"]
    json.dumps({k: v for k, v in _record(b"\xff").items() if k not in ("occurredAt", "audit")})
