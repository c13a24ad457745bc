"""The audit records in MongoDB (collection ``events``): added once by event id, a batch in one write;
read for ``tail``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError

from gatehouse_contracts.errors import GatehouseError
from gatehouse_contracts.mongo import translate_errors

Doc = dict[str, Any]

DUPLICATE_KEY = 11000

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

    async def add_many(self, docs: list[Doc]) -> dict[int, str]:
        """Store the records whose ``_id`` is not there yet, in one write. Returns the ones the
        database refused, by position, with why; one already stored is not refused (nothing about
        it changes). Raises ``Unavailable`` / ``GatehouseError`` when the write as a whole failed."""
        async with translate_errors():
            try:
                await self._events.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                return refused_writes(exc.details)
        return {}

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


def refused_writes(details: Mapping[str, Any]) -> dict[int, str]:
    """The documents of an unordered bulk insert that were not written and are not there already
    (a duplicate ``_id`` is a redelivery: success), by position. A write-concern error fails the
    whole write: what was written may not last, and writing it again changes nothing."""
    if details.get("writeConcernErrors"):
        raise GatehouseError(f"the database did not confirm the write: {details['writeConcernErrors'][0]}")
    return {
        error["index"]: f"the database refused it (code {error.get('code')}): {error.get('errmsg', '')}"
        for error in details.get("writeErrors", [])
        if error.get("code") != DUPLICATE_KEY
    }
