"""What one stored audit record looks like: the event's own fields, made queryable, plus the raw JSON.

    {_id: eventId, eventId, type, occurredAt (a date), source, correlationId, <the event's other
     fields, camelCase>, user (userId or user, when there is one), raw (the JSON as received),
     audit: {subject, streamSeq, storedAt}}

A message that does not decode as any event is still kept, so the trail has no silent gaps:
``type: "undecodable"``, ``occurredAt`` = when the stream stored it, ``raw`` = its bytes as text,
``error`` = why it did not decode. Its ``_id`` is derived from its stream sequence and content, so a
redelivery of it is stored once too.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from gatehouse_contracts.events import Event, decode_event

Doc = dict[str, Any]

UNDECODABLE = "undecodable"


def record(data: bytes, *, subject: str, stream_seq: int, published_at: datetime, stored_at: datetime) -> Doc:
    """The record of one message of the event stream, whether or not it decodes."""
    audit = {"subject": subject, "streamSeq": stream_seq, "storedAt": stored_at}
    raw = data.decode("utf-8", errors="replace")
    try:
        event = decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        digest = hashlib.sha256(data).hexdigest()[:16]
        return {
            "_id": f"{UNDECODABLE}-{stream_seq}-{digest}",
            "type": UNDECODABLE,
            "occurredAt": published_at,
            "source": "",
            "error": str(exc),
            "raw": raw,
            "audit": audit,
        }
    return event_record(event, raw=raw, audit=audit)


def event_record(event: Event, *, raw: str, audit: Doc) -> Doc:
    fields: Doc = msgspec.to_builtins(event, builtin_types=(datetime,))
    user = fields.get("user") or fields.get("userId")
    return {
        **fields,
        "_id": event.event_id,
        **({"user": user} if user else {}),
        "raw": raw,
        "audit": audit,
    }
