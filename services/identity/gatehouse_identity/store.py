"""Identity's MongoDB collections; pymongo errors become ``Unavailable`` here and nowhere else."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gatehouse_contracts.errors import Conflict, NotFound
from gatehouse_contracts.mongo import translate_errors
from gatehouse_contracts.rpc import JwtAuthorizer, WorkloadIdentity


def to_workload(doc: dict[str, Any]) -> WorkloadIdentity:
    authorizer = doc.get("jwtAuthorizer")
    if authorizer and authorizer.get("loginClient"):  # the sealed secret stays in the database
        authorizer = {**authorizer, "loginClient": {"clientId": authorizer["loginClient"]["clientId"]}}
    return WorkloadIdentity(
        name=doc["_id"],
        allowed_resource_oauth2_return_urls=doc.get("allowedReturnUrls", []),
        jwt_authorizer=msgspec.convert(authorizer, JwtAuthorizer) if authorizer else None,
        owner=doc.get("owner", "admin"),
        workload_identity_arn=f"gatehouse:workload-identity/{doc['_id']}",
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


class WorkloadStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> None:
        self._col = client[db]["workload_identities"]

    async def create(
        self, name: str, return_urls: list[str], authorizer: dict[str, Any] | None, owner: str
    ) -> WorkloadIdentity:
        now = time.time()
        doc = {
            "_id": name,
            "owner": owner,
            "allowedReturnUrls": return_urls,
            "jwtAuthorizer": authorizer,
            "createdAt": now,
            "updatedAt": now,
        }
        async with translate_errors():
            try:
                await self._col.insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"workload identity {name!r} already exists") from None
        return to_workload(doc)

    async def get(self, name: str) -> WorkloadIdentity:
        return to_workload(await self.stored(name))

    async def stored(self, name: str) -> dict[str, Any]:
        """The document as stored (with the sealed login-client secret)."""
        async with translate_errors():
            doc = await self._col.find_one({"_id": name})
        if doc is None:
            raise NotFound(f"workload identity {name!r} not found")
        return doc

    async def update(
        self, name: str, return_urls: list[str], authorizer: dict[str, Any] | None
    ) -> WorkloadIdentity:
        async with translate_errors():
            doc = await self._col.find_one_and_update(
                {"_id": name},
                {
                    "$set": {
                        "allowedReturnUrls": return_urls,
                        "jwtAuthorizer": authorizer,
                        "updatedAt": time.time(),
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise NotFound(f"workload identity {name!r} not found")
        return to_workload(doc)

    async def delete(self, name: str) -> None:
        async with translate_errors():
            result = await self._col.delete_one({"_id": name})
        if result.deleted_count == 0:
            raise NotFound(f"workload identity {name!r} not found")

    async def set_secret_hash(self, name: str, digest: str) -> None:
        """Keep the hash of the workload's client secret (see ``workload_auth``)."""
        async with translate_errors():
            result = await self._col.update_one({"_id": name}, {"$set": {"clientSecretHash": digest}})
        if result.matched_count == 0:
            raise NotFound(f"workload identity {name!r} not found")

    async def secret_hash(self, name: str) -> str | None:
        async with translate_errors():
            doc = await self._col.find_one({"_id": name}, {"clientSecretHash": 1})
        return doc.get("clientSecretHash") if doc else None

    async def list(self, limit: int, after: str | None) -> tuple[list[WorkloadIdentity], str | None]:
        query = {"_id": {"$gt": after}} if after else {}
        async with translate_errors():
            docs = await self._col.find(query).sort("_id", ASCENDING).limit(limit + 1).to_list()
        more = len(docs) > limit
        items = [to_workload(d) for d in docs[:limit]]
        return items, (items[-1].name if more else None)


class ProviderStore:
    """Credential providers: ``{_id: providerId, name, vendor, clientId, clientSecret (sealed), ...}``."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> None:
        self._col = client[db]["credential_providers"]

    async def create_indexes(self) -> None:
        async with translate_errors():
            await self._col.create_index([("name", ASCENDING)], unique=True)

    async def insert(self, doc: dict[str, Any]) -> None:
        async with translate_errors():
            try:
                await self._col.insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"credential provider {doc['name']!r} already exists") from None

    async def by_name(self, name: str) -> dict[str, Any]:
        async with translate_errors():
            doc = await self._col.find_one({"name": name})
        if doc is None:
            raise NotFound(f"credential provider {name!r} not found")
        return doc

    async def by_id(self, provider_id: str) -> dict[str, Any] | None:
        async with translate_errors():
            return await self._col.find_one({"_id": provider_id})

    async def replace(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with translate_errors():
            doc = await self._col.find_one_and_update(
                {"name": name}, {"$set": fields}, return_document=ReturnDocument.AFTER
            )
        if doc is None:
            raise NotFound(f"credential provider {name!r} not found")
        return doc

    async def delete(self, name: str) -> None:
        async with translate_errors():
            result = await self._col.delete_one({"name": name})
        if result.deleted_count == 0:
            raise NotFound(f"credential provider {name!r} not found")

    async def page(self, limit: int, after: str | None) -> list[dict[str, Any]]:
        query = {"name": {"$gt": after}} if after else {}
        async with translate_errors():
            return await self._col.find(query).sort("name", ASCENDING).limit(limit + 1).to_list()

    async def all(self) -> list[dict[str, Any]]:
        async with translate_errors():
            return await self._col.find({}).to_list()

    async def set_fields(self, provider_id: str, fields: dict[str, Any]) -> None:
        async with translate_errors():
            await self._col.update_one({"_id": provider_id}, {"$set": fields})


class SessionStore:
    """Authorization sessions: ``{_id: sessionUri, state, status, workload, user, provider..., expiresAt}``.

    Every transition is one conditional update (``status`` and expiry in the filter), so a state,
    a code or a session can be used once only, whichever replica sees it.
    """

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> None:
        self._col = client[db]["authorization_sessions"]

    async def create_indexes(self) -> None:
        async with translate_errors():
            await self._col.create_index([("state", ASCENDING)], unique=True)
            await self._col.create_index([("expiresAt", ASCENDING)])
            await self._col.create_index([("handle", ASCENDING)], sparse=True)
            await self._col.create_index([("loginState", ASCENDING)], sparse=True)

    async def insert(self, doc: dict[str, Any]) -> None:
        async with translate_errors():
            await self._col.insert_one(doc)

    async def get(self, session_uri: str) -> dict[str, Any] | None:
        async with translate_errors():
            return await self._col.find_one({"_id": session_uri})

    async def find_by(self, field: str, value: str) -> dict[str, Any] | None:
        """The session whose ``state``, ``loginState`` or ``handle`` (a digest) is ``value``."""
        async with translate_errors():
            return await self._col.find_one({field: value})

    async def transition(
        self, query: dict[str, Any], from_status: str, fields: dict[str, Any], now: float
    ) -> dict[str, Any] | None:
        """Move a live session in ``from_status`` to ``fields`` (incl. a new status); None if none matched."""
        async with translate_errors():
            return await self._col.find_one_and_update(
                {**query, "status": from_status, "expiresAt": {"$gt": now}},
                {"$set": fields},
                return_document=ReturnDocument.AFTER,
            )

    async def set_fields(self, session_uri: str, fields: dict[str, Any]) -> None:
        async with translate_errors():
            await self._col.update_one({"_id": session_uri}, {"$set": fields})

    async def fail(self, session_uri: str, because: str) -> None:
        """End a session for good (unless it completed already): nothing of it can be used any more."""
        fields = {
            "status": "FAILED",
            "failedBecause": because,
            "code": None,
            "verifier": None,
        }
        async with translate_errors():
            await self._col.update_one({"_id": session_uri, "status": {"$ne": "COMPLETED"}}, {"$set": fields})

    async def delete_by_provider(self, provider_id: str) -> None:
        async with translate_errors():
            await self._col.delete_many({"providerId": provider_id})

    async def purge_expired(self, before: float) -> None:
        async with translate_errors():
            await self._col.delete_many({"expiresAt": {"$lt": before}})


class TokenStore:
    """The token vault: ``{_id: key, workload, user, provider, scopes, access, refresh}`` (tokens sealed)."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> None:
        self._col = client[db]["token_vault"]

    async def get(self, key: str) -> dict[str, Any] | None:
        async with translate_errors():
            return await self._col.find_one({"_id": key})

    async def put(self, doc: dict[str, Any]) -> None:
        async with translate_errors():
            await self._col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def count(self) -> int:
        async with translate_errors():
            return await self._col.count_documents({})

    async def delete(self, key: str) -> bool:
        async with translate_errors():
            return (await self._col.delete_one({"_id": key})).deleted_count == 1

    async def of_user(self, workload: str, user: str) -> list[dict[str, Any]]:
        """One user's entries at one workload, without their sealed tokens."""
        async with translate_errors():
            return await self._col.find(
                {"workload": workload, "user": user}, {"access": 0, "refresh": 0}
            ).to_list()

    async def keys_of_provider(self, provider_id: str) -> list[str]:
        async with translate_errors():
            return [d["_id"] for d in await self._col.find({"providerId": provider_id}, {"_id": 1}).to_list()]

    async def all(self) -> list[dict[str, Any]]:
        async with translate_errors():
            return await self._col.find({}).to_list()
