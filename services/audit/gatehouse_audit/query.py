"""The ``tail`` command's filters, as MongoDB queries over the stored records (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gatehouse_contracts.errors import BadRequest

Doc = dict[str, Any]

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadFilter(BadRequest, ValueError):
    """A filter the user gave cannot be understood; the message says which and why."""


@dataclass(frozen=True)
class Filters:
    gateway: str | None = None
    target: str | None = None
    user: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None


def parse_since(text: str, now: datetime) -> datetime:
    """``90s``, ``10m``, ``2h``, ``7d``, ``1w`` before ``now``, or an ISO 8601 time (UTC if no zone)."""
    value = text.strip()
    ago = _AGO.fullmatch(value)
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: float(ago.group(1))})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadFilter(
            f"--since {text!r}: give an age like 10m, 2h, 7d or a time like 2025-06-01T12:00:00Z"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def type_condition(patterns: tuple[str, ...]) -> Doc | str:
    """One type, several, or shell-style globs (``identity.*``, ``target.sync_*``) as a condition."""
    if not any(_is_glob(p) for p in patterns):
        return patterns[0] if len(patterns) == 1 else {"$in": list(patterns)}
    # Go's regexp (FerretDB) and PCRE (MongoDB) agree on this much: anchors, groups, ., .*, |.
    alternatives = "|".join(_glob_regex(p) for p in patterns)
    return {"$regex": f"^(?:{alternatives})$"}


def mongo_query(filters: Filters) -> Doc:
    """The MongoDB query for ``filters``; empty filters match every record."""
    query: Doc = {}
    if filters.gateway:
        # identity's events name the workload identity, which for a gateway is named after it
        query["$or"] = [{"gatewayId": filters.gateway}, {"workloadName": filters.gateway}]
    if filters.target:
        query["targetId"] = filters.target
    if filters.user:
        query["user"] = filters.user
    if filters.types:
        query["type"] = type_condition(filters.types)
    if filters.since is not None:
        query["occurredAt"] = {"$gte": filters.since}
    return query


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?")


def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
