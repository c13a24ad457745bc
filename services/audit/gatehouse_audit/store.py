"""The audit records in MongoDB (collection ``events``): add once by event id, read for ``tail``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatehouse_contracts.mongo import translate_errors

Doc = dict[str, Any]

STORED_AT = "audit.storedAt"
# (field, direction) lists; the last one serves tail --follow
INDEXES: list[list[tuple[str, int]]] = [
    [("occurredAt", ASCENDING)],
    [("gatewayId", ASCENDING), ("occurredAt", ASCENDING)],
    [("workloadName", ASCENDING), ("occurredAt", ASCENDING)],
    [("type", ASCENDING), ("occurredAt", ASCENDING)],
    [(STORED_AT, ASCENDING)],
]
NEWEST_FIRST = [("occurredAt", DESCENDING), ("_id", DESCENDING)]
STORAGE_ORDER = [(STORED_AT, ASCENDING), ("audit.streamSeq", ASCENDING)]


class AuditStore:
    def __init__(self, client: AsyncMongoClient[Doc], db: str) -> None:
        self._events = client[db]["events"]
        self._dead = client[db]["dead_letters"]

    async def ensure_indexes(self) -> None:
        async with translate_errors():
            for keys in INDEXES:
                await self._events.create_index(keys)

    async def add(self, doc: Doc) -> bool:
        """Store a record unless one with its ``_id`` is there already (then False: nothing changes)."""
        try:
            async with translate_errors():
                await self._events.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def latest(self, query: Doc, limit: int) -> list[Doc]:
        """The ``limit`` newest matching records by ``occurredAt``, oldest first."""
        async with translate_errors():
            docs = await self._events.find(query).sort(NEWEST_FIRST).limit(limit).to_list()
        docs.reverse()
        return docs

    async def stored_since(self, query: Doc, since: datetime | None) -> list[Doc]:
        """Matching records stored at or after ``since`` (every one when None), in storage order."""
        if since is not None:
            query = {**query, STORED_AT: {"$gte": since}}
        async with translate_errors():
            return await self._events.find(query).sort(STORAGE_ORDER).to_list()

    async def last_stored_at(self) -> datetime | None:
        async with translate_errors():
            doc = await self._events.find_one({}, {STORED_AT: 1}, sort=[(STORED_AT, DESCENDING)])
        stored = (doc or {}).get("audit", {}).get("storedAt")
        return stored if isinstance(stored, datetime) else None

    async def dead_letter(self, record: Doc) -> None:
        """A message that could not be stored in any delivery (collection ``dead_letters``)."""
        async with translate_errors():
            await self._dead.replace_one({"_id": record["_id"]}, record, upsert=True)
