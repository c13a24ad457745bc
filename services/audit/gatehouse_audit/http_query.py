"""``GET /events``: the audit trail over HTTP, with ``tail``'s filters, for the admin (the console).

The records hold who did what, so the route takes the admin token (``GATEHOUSE_ADMIN_TOKEN``);
without one configured it refuses every caller.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Query, Request
from starlette.responses import Response

from gatehouse_contracts.errors import BadRequest
from gatehouse_contracts.http import AdminAuth, json_response

from .lines import format_json, format_line
from .query import Filters, mongo_query, parse_since
from .store import AuditStore

MAX_LIMIT = 1000


def add_query_route(app: FastAPI, store: AuditStore, auth: AdminAuth) -> None:
    @app.get("/events")
    async def events(
        request: Request,
        gateway: str | None = None,
        target: str | None = None,
        user: str | None = None,
        type: Annotated[list[str], Query()] = [],  # noqa: A002, B006 - the query parameter's name; FastAPI copies
        since: str | None = None,
        limit: int = 100,
    ) -> Response:
        """The newest matching events, newest first: ``{items: [{event, line}]}`` (admin token)."""
        await auth.check(request)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be 1-{MAX_LIMIT}")
        filters = Filters(
            gateway=gateway or None,
            target=target or None,
            user=user or None,
            types=tuple(t for t in type if t),
            since=parse_since(since, datetime.now(UTC)) if since else None,
        )
        docs = await store.latest(mongo_query(filters), limit)
        items = [{"event": json.loads(format_json(doc)), "line": format_line(doc)} for doc in reversed(docs)]
        return json_response({"items": items}, headers={"Cache-Control": "no-store"})
