"""The sync-worker's view of targets: read the spec, write status + tools with a generation CAS."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from pymongo import AsyncMongoClient

from gatehouse_contracts.mongo import ping, translate_errors

Doc = dict[str, Any]


class TargetStore:
    def __init__(self, client: AsyncMongoClient[Doc], db: str) -> None:
        self.client = client
        self._targets = client[db]["targets"]

    async def get(self, target_id: str) -> Doc | None:
        async with translate_errors():
            return await self._targets.find_one({"_id": target_id}, {"toolsJson": 0})

    async def write_status(
        self, target_id: str, generation: int, status: Doc, tools: list[Any] | None
    ) -> bool:
        """Store the outcome of a sync of ``generation`` unless the spec has moved on (then False)."""
        fields: Doc = {"status": {**status, "observedGeneration": generation}, "stamp": uuid.uuid4().hex}
        if tools is not None:
            fields["toolsJson"] = msgspec.json.encode(
                tools
            )  # JSON Schema keys like $ref can't be field names
        async with translate_errors():
            result = await self._targets.update_one(
                {"_id": target_id, "generation": generation}, {"$set": fields}
            )
        return result.matched_count == 1

    async def ping(self) -> bool:
        return await ping(self.client)
