"""``gatehouse-audit tail``: print stored events, oldest first; with ``--follow`` new ones as they come."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from gatehouse_contracts.config import SettingsError
from gatehouse_contracts.errors import GatehouseError, Unavailable
from gatehouse_contracts.mongo import connect

from .lines import format_json, format_line
from .query import BadFilter, Filters, mongo_query, parse_since
from .settings import Settings
from .store import AuditStore

Doc = dict[str, Any]

# A record becomes visible a moment after the audit service stamped its storedAt: --follow looks
# back this far every poll and skips what it has printed already.
LOOKBACK = timedelta(seconds=30)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway", metavar="ID", help="events of this gateway (and of its workload identity)"
    )
    parser.add_argument("--target", metavar="ID", help="events of this target")
    parser.add_argument(
        "--user", metavar="U", help="events of this user (tool.invoked user, identity userId)"
    )
    parser.add_argument(
        "--type",
        metavar="T",
        action="append",
        dest="types",
        help="event type, globs allowed (identity.*, target.sync_*); repeat for several",
    )
    parser.add_argument("--since", metavar="WHEN", help="10m, 2h, 7d, or an ISO 8601 time (UTC if no zone)")
    parser.add_argument(
        "--limit", metavar="N", type=int, default=50, help="the N newest matching events (default 50)"
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    parser.add_argument(
        "--interval", metavar="S", type=float, default=1.0, help="seconds between --follow polls (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print each event's JSON instead of a line")


@dataclass(frozen=True)
class Request:
    query: Doc
    limit: int
    follow: bool
    interval: float
    as_json: bool


def request_from(args: argparse.Namespace, now: datetime) -> Request:
    """The command line as a query; ``BadFilter`` names what is wrong with it."""
    if args.limit < 1:
        raise BadFilter("--limit must be at least 1")
    if args.interval <= 0:
        raise BadFilter("--interval must be more than 0")
    filters = Filters(
        gateway=args.gateway,
        target=args.target,
        user=args.user,
        types=tuple(args.types or ()),
        since=parse_since(args.since, now) if args.since else None,
    )
    return Request(mongo_query(filters), args.limit, args.follow, args.interval, args.json)


async def tail(store: AuditStore, request: Request, out: TextIO) -> None:
    """Write the newest matching records to ``out``, oldest first; then, with ``follow``, each new one."""

    def show(doc: Doc) -> None:
        out.write((format_json(doc) if request.as_json else format_line(doc)) + "\n")
        out.flush()

    # what was stored up to now is the listing's; --follow prints only what is stored after it
    cursor = await store.last_stored_at() if request.follow else None
    seen: dict[str, datetime] = {}
    if cursor is not None:
        seen = {doc["_id"]: _stored_at(doc) for doc in await _window(store, request.query, cursor)}
    for doc in await store.latest(request.query, request.limit):
        show(doc)
        seen[doc["_id"]] = _stored_at(doc)
    while request.follow:
        await asyncio.sleep(request.interval)
        try:
            newest = await store.last_stored_at()
            window = await _window(store, request.query, cursor)
        except Unavailable as exc:  # keep following through a database restart
            print(f"gatehouse-audit tail: {exc.message}; retrying", file=sys.stderr)
            continue
        for doc in window:
            if doc["_id"] not in seen:
                show(doc)
                seen[doc["_id"]] = _stored_at(doc)
        if newest is not None:
            cursor = newest
            seen = {key: at for key, at in seen.items() if at >= newest - LOOKBACK}


async def _window(store: AuditStore, query: Doc, cursor: datetime | None) -> list[Doc]:
    return await store.stored_since(query, None if cursor is None else cursor - LOOKBACK)


def _stored_at(doc: Doc) -> datetime:
    stored = (doc.get("audit") or {}).get("storedAt")
    return stored if isinstance(stored, datetime) else datetime.min


async def _run(settings: Settings, request: Request) -> None:
    mongo = connect(settings.mongodb_url)
    try:
        await tail(AuditStore(mongo, settings.audit_db), request, sys.stdout)
    finally:
        await mongo.close()


def main(args: argparse.Namespace) -> None:
    try:
        settings = Settings.from_env()
        request = request_from(args, datetime.now(UTC))
    except (SettingsError, BadFilter) as exc:
        sys.exit(f"gatehouse-audit tail: {exc}")
    try:
        asyncio.run(_run(settings, request))
    except GatehouseError as exc:
        sys.exit(f"gatehouse-audit tail: {exc.message}")
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `gatehouse-audit tail | head`: stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
