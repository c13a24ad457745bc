"""Workload identities: who a service acts as when it asks for tokens, and its return-URL allow-list."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gatehouse_contracts import rpc
from gatehouse_contracts.errors import BadRequest
from gatehouse_contracts.http import page_token, parse_page

from .deps import Caller
from .store import WorkloadStore

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(
            "name must be 1-255 characters of letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    return name


def _check_return_urls(urls: list[str]) -> list[str]:
    if len(urls) > 100:
        raise BadRequest("allowedResourceOauth2ReturnUrls takes at most 100 URLs")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or len(url) > 2048:
            raise BadRequest(f"return URL {url[:100]!r} must be an absolute http(s) URL without a fragment")
    return list(dict.fromkeys(urls))


async def create(
    store: WorkloadStore, req: rpc.CreateWorkloadIdentity, caller: Caller
) -> rpc.WorkloadIdentity:
    owner = "gateway" if caller.service == "gateway" else "admin"
    return await store.create(
        _check_name(req.name),
        _check_return_urls(req.allowed_resource_oauth2_return_urls),
        req.jwt_authorizer,
        owner,
    )


async def get(store: WorkloadStore, req: rpc.GetWorkloadIdentity, caller: Caller) -> rpc.WorkloadIdentity:
    workload = await store.get(req.name)
    caller.check_workload(workload)
    return workload


async def update(
    store: WorkloadStore, req: rpc.UpdateWorkloadIdentity, caller: Caller
) -> rpc.WorkloadIdentity:
    caller.check_workload(await store.get(req.name))
    return await store.update(
        req.name, _check_return_urls(req.allowed_resource_oauth2_return_urls), req.jwt_authorizer
    )


async def delete(store: WorkloadStore, req: rpc.DeleteWorkloadIdentity, caller: Caller) -> rpc.Deleted:
    caller.check_workload(await store.get(req.name))
    await store.delete(req.name)
    return rpc.Deleted(name=req.name)


async def list_(
    store: WorkloadStore, req: rpc.ListWorkloadIdentities, caller: Caller
) -> rpc.WorkloadIdentityList:
    size, after = parse_page(req.max_results, req.next_token)
    items, last = await store.list(size, after)
    if caller.service is not None:
        items = [w for w in items if w.owner == "gateway"]
    return rpc.WorkloadIdentityList(items=items, next_token=page_token(last))
