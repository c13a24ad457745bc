"""One line per stored record for ``tail``: time, type, who (gateway/target/user), what matters about it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .records import UNDECODABLE

Doc = dict[str, Any]

TYPE_WIDTH = 29  # the longest tag, identity.authorization_failed, plus a space
RAW_PREVIEW = 120


def format_line(doc: Doc) -> str:
    """``2025-06-01T12:00:00.123Z tool.invoked  gateway=g target=t user=u tool=echo outcome=success …``."""
    kind = str(doc.get("type", "?"))
    who = _pairs(
        ("gateway", doc.get("gatewayId")), ("target", doc.get("targetId")), ("user", doc.get("user"))
    )
    what = " ".join(_DETAILS.get(kind, _no_details)(doc))
    return " ".join(
        part for part in (_time(doc.get("occurredAt")), kind.ljust(TYPE_WIDTH), who, what) if part
    )


def format_json(doc: Doc) -> str:
    """The event's JSON as it travelled, on one line; an undecodable message as a JSON object about it."""
    raw = str(doc.get("raw", ""))
    if doc.get("type") == UNDECODABLE:
        subject = (doc.get("audit") or {}).get("subject", "")
        about = {"type": UNDECODABLE, "subject": subject, "error": doc.get("error", ""), "raw": raw}
        return json.dumps(about, ensure_ascii=False)
    if "\n" in raw:  # someone else's pretty-printed event
        return json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":"))
    return raw


def _time(value: Any) -> str:
    if not isinstance(value, datetime):
        return "?"
    # pymongo hands back naive UTC datetimes unless the client is tz-aware
    when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    text = str(value)
    plain = text and all(c.isprintable() and not c.isspace() and c not in "\"'=" for c in text)
    return text if plain else json.dumps(text)


def _pairs(*pairs: tuple[str, Any]) -> str:
    return " ".join(f"{name}={_value(value)}" for name, value in pairs if value not in (None, ""))


def _no_details(doc: Doc) -> list[str]:
    return []


def _fields(*names: str) -> Callable[[Doc], list[str]]:
    def details(doc: Doc) -> list[str]:
        text = _pairs(*((name, doc.get(name)) for name in names))
        return [text] if text else []

    return details


def _tool_invoked(doc: Doc) -> list[str]:
    duration = doc.get("durationMs")
    shown = f"{duration:.1f}ms" if isinstance(duration, int | float) else None
    return [_pairs(("tool", doc.get("tool")), ("outcome", doc.get("outcome")), ("duration", shown))]


def _sync_failed(doc: Doc) -> list[str]:
    return [
        _pairs(
            ("generation", doc.get("generation")),
            ("attempt", doc.get("attempt")),
            ("terminal", doc.get("terminal")),
            ("reason", doc.get("reason")),
        )
    ]


def _undecodable(doc: Doc) -> list[str]:
    raw = str(doc.get("raw", ""))
    preview = raw if len(raw) <= RAW_PREVIEW else raw[:RAW_PREVIEW] + "…"
    subject = (doc.get("audit") or {}).get("subject")
    return [_pairs(("subject", subject), ("error", doc.get("error")), ("raw", preview))]


_token = _fields("workloadName", "providerName", "scopes")

_DETAILS: dict[str, Callable[[Doc], list[str]]] = {
    "gateway.created": _fields("name"),
    "gateway.updated": _fields("name"),
    "target.created": _fields("generation"),
    "target.updated": _fields("generation"),
    "target.sync_requested": _fields("generation", "requestId"),
    "target.authorization_required": _fields("generation"),
    "target.synchronized": lambda doc: [
        _pairs(("generation", doc.get("generation")), ("tools", doc.get("toolCount")))
    ],
    "target.sync_failed": _sync_failed,
    "identity.token_issued": _token,
    "identity.token_refreshed": _token,
    "identity.token_revoked": _fields("workloadName", "providerName", "scopes", "reason"),
    "identity.authorization_failed": lambda doc: [
        _pairs(
            ("reason", doc.get("reason")),
            ("workloadName", doc.get("workloadName")),
            ("providerName", doc.get("providerName")),
            ("count", doc.get("count") if doc.get("count", 1) != 1 else None),  # a summary only
        )
    ],
    "tool.invoked": _tool_invoked,
    UNDECODABLE: _undecodable,
}
