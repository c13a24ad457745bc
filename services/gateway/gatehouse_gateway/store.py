"""Gateways and targets in MongoDB; pymongo errors become ``Unavailable`` here and nowhere else.

A target document (``lifecycle.Target``, read typed) holds the spec (written here), the status and the
tool cache (written by the sync-worker, and here only for the initial state and for inline schemas).
Gateway documents stay plain dicts: they are written and read here only.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatehouse_contracts.lifecycle import Target, document, target
from gatehouse_contracts.mongo import ping, translate_errors

from .errors import Conflict

Doc = dict[str, Any]
NO_TOOLS = {"toolsJson": 0}


class Store:
    def __init__(self, client: AsyncMongoClient[Doc], db: str) -> None:
        self.client = client
        self.gateways = client[db]["gateways"]
        self.targets = client[db]["targets"]
        self.ended_sessions = client[db]["ended_sessions"]

    async def create_indexes(self) -> None:
        async with translate_errors():
            await self.gateways.create_index([("name", ASCENDING)], unique=True)
            await self.targets.create_index([("gatewayId", ASCENDING), ("name", ASCENDING)], unique=True)
            await self.ended_sessions.create_index([("expiresAt", ASCENDING)])

    # -- MCP sessions ended by DELETE (so a replica started later refuses them too) ------------

    async def end_session(self, nonce: str, expires_at: float) -> None:
        async with translate_errors():
            await self.ended_sessions.replace_one(
                {"_id": nonce}, {"_id": nonce, "expiresAt": expires_at}, upsert=True
            )

    async def ended_sessions_now(self, now: float) -> dict[str, float]:
        """Ended sessions not yet expired (nonce -> expiry); the expired ones are deleted."""
        async with translate_errors():
            await self.ended_sessions.delete_many({"expiresAt": {"$lte": now}})
            docs = await self.ended_sessions.find({}).to_list()
        return {d["_id"]: float(d["expiresAt"]) for d in docs}

    async def ping(self) -> bool:
        return await ping(self.client)

    # -- gateways ---------------------------------------------------------------------------

    async def insert_gateway(self, doc: Doc) -> None:
        async with translate_errors():
            try:
                await self.gateways.insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"a gateway named {doc['name']!r} already exists") from None

    async def get_gateway(self, gateway_id: str) -> Doc | None:
        async with translate_errors():
            return await self.gateways.find_one({"_id": gateway_id})

    async def replace_gateway(self, gateway_id: str, fields: Doc) -> Doc | None:
        async with translate_errors():
            try:
                return await self.gateways.find_one_and_update(
                    {"_id": gateway_id},
                    {"$set": fields, "$inc": {"generation": 1}},
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                raise Conflict(f"a gateway named {fields['name']!r} already exists") from None

    async def delete_gateway(self, gateway_id: str) -> bool:
        async with translate_errors():
            return (await self.gateways.delete_one({"_id": gateway_id})).deleted_count == 1

    async def list_gateways(self, limit: int, after: str | None) -> list[Doc]:
        async with translate_errors():
            query = {"_id": {"$gt": after}} if after else {}
            return await self.gateways.find(query).sort("_id", ASCENDING).limit(limit + 1).to_list()

    async def all_gateways(self) -> list[Doc]:
        async with translate_errors():
            return await self.gateways.find({}).to_list()

    # -- targets ----------------------------------------------------------------------------

    async def insert_target(self, new: Target) -> None:
        async with translate_errors():
            try:
                await self.targets.insert_one(document(new))
            except DuplicateKeyError:
                raise Conflict(f"this gateway already has a target named {new.name!r}") from None

    async def get_target(self, gateway_id: str, target_id: str, *, with_tools: bool = False) -> Target | None:
        # by _id alone: an index hit everywhere (FerretDB pushes down nothing else); gateway checked here
        async with translate_errors():
            doc = await self.targets.find_one({"_id": target_id}, None if with_tools else NO_TOOLS)
        return target(doc) if doc is not None and doc.get("gatewayId") == gateway_id else None

    async def update_target(
        self, gateway_id: str, target_id: str, expect_generation: int, fields: Doc
    ) -> Target | None:
        """Set ``fields`` if the target is still at ``expect_generation``; None if it moved on or is gone."""
        async with translate_errors():
            try:
                doc = await self.targets.find_one_and_update(
                    {"_id": target_id, "gatewayId": gateway_id, "generation": expect_generation},
                    {"$set": fields},
                    return_document=ReturnDocument.AFTER,  # FerretDB: no projection here
                )
            except DuplicateKeyError:
                raise Conflict(f"this gateway already has a target named {fields.get('name')!r}") from None
        return None if doc is None else target(doc)

    async def delete_target(self, gateway_id: str, target_id: str) -> bool:
        async with translate_errors():
            return (
                await self.targets.delete_one({"_id": target_id, "gatewayId": gateway_id})
            ).deleted_count == 1

    async def count_targets(
        self, gateway_id: str, grant_type: str | None = None, *, without_return_url: bool = False
    ) -> int:
        query: Doc = {"gatewayId": gateway_id}
        if grant_type:
            query["spec.grantType"] = grant_type
        if without_return_url:
            query["spec.defaultReturnUrl"] = None
        async with translate_errors():
            return await self.targets.count_documents(query)

    async def return_urls(self, gateway_id: str) -> list[str]:
        """The ``defaultReturnUrl``s of a gateway's targets: its workload identity's allow-list."""
        async with translate_errors():
            docs = await self.targets.find({"gatewayId": gateway_id}, {"spec.defaultReturnUrl": 1}).to_list()
        return sorted({url for d in docs if (url := d.get("spec", {}).get("defaultReturnUrl"))})

    async def list_targets(self, gateway_id: str, limit: int, after: str | None) -> list[Target]:
        query: Doc = {"gatewayId": gateway_id}
        if after:
            query["_id"] = {"$gt": after}
        async with translate_errors():
            docs = await self.targets.find(query, NO_TOOLS).sort("_id", ASCENDING).limit(limit + 1).to_list()
        return [target(doc) for doc in docs]

    async def catalog_targets(self, gateway_id: str) -> list[Target]:
        """Every target of one gateway with its tools, for the in-memory catalog."""
        async with translate_errors():
            docs = await self.targets.find({"gatewayId": gateway_id}).to_list()
        return [target(doc) for doc in docs]

    async def target_stamps(self) -> dict[str, tuple[str, str]]:
        """Each target's (gateway, ``stamp``); every write changes the stamp: what the catalog re-reads."""
        async with translate_errors():
            docs = await self.targets.find({}, {"stamp": 1, "gatewayId": 1}).to_list()
        return {doc["_id"]: (doc.get("gatewayId", ""), doc.get("stamp", "")) for doc in docs}

    async def targets_by_id(self, target_ids: list[str]) -> list[Target]:
        async with translate_errors():
            docs = await self.targets.find({"_id": {"$in": target_ids}}).to_list()
        return [target(doc) for doc in docs]
