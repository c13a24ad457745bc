"""The sync-worker's view of targets: read the spec, write status + tools with a generation CAS."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from pymongo import ASCENDING, AsyncMongoClient

from gatehouse_contracts.lifecycle import Target, TargetStatus, stored, target
from gatehouse_contracts.mongo import ping, translate_errors

Doc = dict[str, Any]


class TargetStore:
    def __init__(self, client: AsyncMongoClient[Doc], db: str) -> None:
        self.client = client
        self._targets = client[db]["targets"]
        self._dead = client[db]["dead_letters"]

    async def create_indexes(self) -> None:
        """For the sweeper's queries (MongoDB; FerretDB 1.24 scans anyway): pending statuses, and
        the few targets with an outbox (sparse)."""
        async with translate_errors():
            await self._targets.create_index([("status.status", ASCENDING)])
            await self._targets.create_index([("outboxId", ASCENDING)], sparse=True)

    async def get(self, target_id: str) -> Target | None:
        async with translate_errors():
            doc = await self._targets.find_one({"_id": target_id}, {"toolsJson": 0})
        return None if doc is None else target(doc)

    async def expired_pending(self, statuses: tuple[str, ...], now: float) -> list[Target]:
        """Targets waiting for a consent whose session ran out (the expiry is compared here, not in
        the query: FerretDB does not push nested comparisons down anyway)."""
        async with translate_errors():
            docs = await self._targets.find(
                {"status.status": {"$in": list(statuses)}}, {"toolsJson": 0, "outbox": 0}
            ).to_list()
        targets = [target(d) for d in docs]
        return [t for t in targets if (p := t.status.pending) is not None and p.expires_at < now]

    async def write_status(
        self,
        target_id: str,
        generation: int,
        status: TargetStatus,
        tools: list[Any] | None,
        *,
        outbox: tuple[str, bytes] | None = None,
        expect_status: str | None = None,
    ) -> bool:
        """Store the outcome of a sync of ``generation`` unless the spec has moved on (then False),
        or (``expect_status``) the status is no longer the one this outcome answers."""
        status = msgspec.structs.replace(status, observed_generation=generation)
        fields: Doc = {"status": stored(status), "stamp": uuid.uuid4().hex}
        if outbox is not None:  # (event id, encoded event): see deps.record
            fields["outboxId"], fields["outbox"] = outbox
        if tools is not None:
            # one blob: JSON Schema keys like $ref can't be MongoDB field names
            fields["toolsJson"] = msgspec.json.encode(tools)
        query: Doc = {"_id": target_id, "generation": generation}
        if expect_status is not None:
            query["status.status"] = expect_status
        async with translate_errors():
            result = await self._targets.update_one(query, {"$set": fields})
        return result.matched_count == 1

    async def count_with_status(self, statuses: tuple[str, ...]) -> int:
        async with translate_errors():
            return await self._targets.count_documents({"status.status": {"$in": list(statuses)}})

    async def with_outbox(self) -> list[Target]:
        """Targets whose last outcome event may not have been published."""
        async with translate_errors():
            docs = await self._targets.find({"outboxId": {"$exists": True}}, {"toolsJson": 0}).to_list()
        return [target(d) for d in docs]

    async def clear_outbox(self, target_id: str, event_id: str) -> None:
        """The stored outcome event was published (only that one: a newer outcome may have replaced it)."""
        async with translate_errors():
            await self._targets.update_one(
                {"_id": target_id, "outboxId": event_id}, {"$unset": {"outbox": "", "outboxId": ""}}
            )

    async def dead_letter(self, record: Doc) -> None:
        """An event that failed every delivery (collection ``dead_letters``)."""
        async with translate_errors():
            await self._dead.replace_one({"_id": record["_id"]}, record, upsert=True)

    async def ping(self) -> bool:
        return await ping(self.client)
