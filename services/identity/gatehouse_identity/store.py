"""Identity's MongoDB collections; pymongo errors become ``Unavailable`` here and nowhere else."""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatehouse_contracts.errors import Conflict, NotFound
from gatehouse_contracts.mongo import translate_errors
from gatehouse_contracts.rpc import WorkloadIdentity


def _to_workload(doc: dict[str, Any]) -> WorkloadIdentity:
    return WorkloadIdentity(
        name=doc["_id"],
        allowed_resource_oauth2_return_urls=doc.get("allowedReturnUrls", []),
        workload_identity_arn=f"gatehouse:workload-identity/{doc['_id']}",
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


class WorkloadStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> None:
        self._col = client[db]["workload_identities"]

    async def create(self, name: str, return_urls: list[str]) -> WorkloadIdentity:
        now = time.time()
        doc = {"_id": name, "allowedReturnUrls": return_urls, "createdAt": now, "updatedAt": now}
        async with translate_errors():
            try:
                await self._col.insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"workload identity {name!r} already exists") from None
        return _to_workload(doc)

    async def get(self, name: str) -> WorkloadIdentity:
        async with translate_errors():
            doc = await self._col.find_one({"_id": name})
        if doc is None:
            raise NotFound(f"workload identity {name!r} not found")
        return _to_workload(doc)

    async def update(self, name: str, return_urls: list[str]) -> WorkloadIdentity:
        async with translate_errors():
            doc = await self._col.find_one_and_update(
                {"_id": name},
                {"$set": {"allowedReturnUrls": return_urls, "updatedAt": time.time()}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise NotFound(f"workload identity {name!r} not found")
        return _to_workload(doc)

    async def delete(self, name: str) -> None:
        async with translate_errors():
            result = await self._col.delete_one({"_id": name})
        if result.deleted_count == 0:
            raise NotFound(f"workload identity {name!r} not found")

    async def list(self, limit: int, after: str | None) -> tuple[list[WorkloadIdentity], str | None]:
        query = {"_id": {"$gt": after}} if after else {}
        async with translate_errors():
            docs = await self._col.find(query).sort("_id", ASCENDING).limit(limit + 1).to_list()
        more = len(docs) > limit
        items = [_to_workload(d) for d in docs[:limit]]
        return items, (items[-1].name if more else None)
