"""Workload identities: who a service acts as when it asks for tokens, and its return-URL allow-list."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec

from gatehouse_contracts import rpc
from gatehouse_contracts.errors import BadRequest
from gatehouse_contracts.http import page_token, parse_page

from . import workload_auth
from .crypto import Vault
from .deps import Caller, Deps
from .store import to_workload

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(
            "name must be 1-255 characters of letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    return name


def _check_return_urls(deps: Deps, urls: list[str]) -> list[str]:
    """A return URL receives the completion of a consent: absolute, no fragment, https (loopback aside)."""
    if len(urls) > 100:
        raise BadRequest("allowedResourceOauth2ReturnUrls takes at most 100 URLs")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or len(url) > 2048:
            raise BadRequest(f"return URL {url[:100]!r} must be an absolute http(s) URL without a fragment")
        deps.providers.guard.check_https(url, f"return URL {url[:100]!r}")  # EndpointDenied: a 400
    return list(dict.fromkeys(urls))


def login_secret_aad(workload: str) -> str:
    return f"workload:{workload}:login-client"


def _stored_authorizer(
    vault: Vault, name: str, authorizer: rpc.JwtAuthorizer | None, current: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The authorizer as stored: a login client's secret sealed; an empty secret keeps the stored
    one of the same client id (a gateway re-sends its authorizer without the secret it never kept)."""
    if authorizer is None:
        return None
    doc: dict[str, Any] = msgspec.to_builtins(authorizer)
    login = authorizer.login_client
    if login is None:
        doc.pop("loginClient", None)
        return doc
    if not 1 <= len(login.client_id) <= 256 or not login.client_id.isprintable():
        raise BadRequest("jwtAuthorizer.loginClient.clientId must be 1-256 printable characters")
    if login.client_secret:
        sealed = vault.seal(login.client_secret, login_secret_aad(name))
    else:
        kept = ((current or {}).get("jwtAuthorizer") or {}).get("loginClient") or {}
        if kept.get("clientId") != login.client_id or not kept.get("clientSecret"):
            raise BadRequest("jwtAuthorizer.loginClient.clientSecret is required for a new login client")
        sealed = kept["clientSecret"]
    doc["loginClient"] = {"clientId": login.client_id, "clientSecret": sealed}
    return doc


async def create(deps: Deps, req: rpc.CreateWorkloadIdentity, caller: Caller) -> rpc.WorkloadIdentity:
    """A gateway's workload identity (used over the bus only) has no client secret; an admin's gets
    one, shown in this answer only."""
    owner = "gateway" if caller.service == "gateway" else "admin"
    name = _check_name(req.name)
    made = await deps.workloads.create(
        name,
        _check_return_urls(deps, req.allowed_resource_oauth2_return_urls),
        _stored_authorizer(deps.vault, name, req.jwt_authorizer, None),
        owner,
    )
    return made if owner == "gateway" else await workload_auth.issue_secret(deps.workloads, made)


async def rotate_secret(
    deps: Deps, req: rpc.RotateWorkloadIdentitySecret, caller: Caller
) -> rpc.WorkloadIdentity:
    return await workload_auth.issue_secret(deps.workloads, await deps.workloads.get(req.name))


async def get(deps: Deps, req: rpc.GetWorkloadIdentity, caller: Caller) -> rpc.WorkloadIdentity:
    workload = await deps.workloads.get(req.name)
    caller.check_workload(workload)
    return workload


async def update(deps: Deps, req: rpc.UpdateWorkloadIdentity, caller: Caller) -> rpc.WorkloadIdentity:
    current = await deps.workloads.stored(req.name)
    caller.check_workload(to_workload(current))
    return await deps.workloads.update(
        req.name,
        _check_return_urls(deps, req.allowed_resource_oauth2_return_urls),
        _stored_authorizer(deps.vault, req.name, req.jwt_authorizer, current),
    )


async def delete(deps: Deps, req: rpc.DeleteWorkloadIdentity, caller: Caller) -> rpc.Deleted:
    caller.check_workload(await deps.workloads.get(req.name))
    await deps.workloads.delete(req.name)
    return rpc.Deleted(name=req.name)


async def list_(deps: Deps, req: rpc.ListWorkloadIdentities, caller: Caller) -> rpc.WorkloadIdentityList:
    size, after = parse_page(req.max_results, req.next_token)
    items, last = await deps.workloads.list(size, after)
    if caller.service is not None:
        items = [w for w in items if w.owner == "gateway"]
    return rpc.WorkloadIdentityList(items=items, next_token=page_token(last))
