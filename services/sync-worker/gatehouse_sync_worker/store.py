"""The sync-worker's view of targets: read the spec, write status + tools with a generation compare-and-set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from gatehouse_contracts.errors import Unavailable

Doc = dict[str, Any]


@asynccontextmanager
async def mongo_errors() -> AsyncIterator[None]:
    try:
        yield
    except PyMongoError as exc:
        raise Unavailable(f"the database is unavailable ({type(exc).__name__})") from None


class TargetStore:
    def __init__(self, client: AsyncMongoClient[Doc], db: str) -> None:
        self.client = client
        self._targets = client[db]["targets"]

    async def get(self, target_id: str) -> Doc | None:
        async with mongo_errors():
            return await self._targets.find_one({"_id": target_id}, {"tools": 0})

    async def write_status(self, target_id: str, generation: int, status: Doc, tools: list[Any] | None,
                           stamp: str) -> bool:
        """Store the outcome of a sync of ``generation`` unless the spec has moved on (then False)."""
        fields: Doc = {"status": {**status, "observedGeneration": generation}, "stamp": stamp}
        if tools is not None:
            fields["tools"] = tools
        async with mongo_errors():
            result = await self._targets.update_one({"_id": target_id, "generation": generation}, {"$set": fields})
        return result.matched_count == 1

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False
