"""Gateway operations: create (with its workload identity), read, list, replace, delete."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from gatehouse_contracts import bus, rpc
from gatehouse_contracts.events import GatewayCreated, GatewayDeleted, GatewayUpdated, new_event
from gatehouse_contracts.http import page_token, parse_page
from gatehouse_contracts.jwt import IssuerUnavailable
from gatehouse_contracts.mcp_client import SUPPORTED_PROTOCOL_VERSIONS

from .catalog import SEPARATOR
from .deps import Deps
from .errors import BadRequest, Conflict, NotFound
from .models import GatewayBody, McpProtocol, check_description, check_name
from .store import Doc
from .tool_search import SEARCH_ONLY

SOURCE = "gateway"


def gateway_url(deps: Deps, gateway_id: str) -> str:
    return f"{deps.public_url.rstrip('/')}/gateways/{gateway_id}/mcp"


def render(deps: Deps, doc: Doc) -> dict[str, Any]:
    return {
        "gatewayId": doc["_id"],
        "gatewayUrl": gateway_url(deps, doc["_id"]),
        "name": doc["name"],
        "description": doc.get("description", ""),
        "status": doc.get("status", "READY"),
        "statusReasons": doc.get("statusReasons", []),
        "protocolType": "MCP",
        "authorizerType": doc["authorizerType"],
        "authorizerConfiguration": doc.get("authorizerConfiguration"),
        "protocolConfiguration": doc["protocolConfiguration"],
        "workloadIdentityDetails": {"workloadIdentityName": doc["_id"]},
        "createdAt": doc["createdAt"],
        "updatedAt": doc["updatedAt"],
    }


async def _authorizer(deps: Deps, body: GatewayBody) -> Doc | None:
    """The stored inbound authorizer; its discovery document must be reachable now."""
    config = body.authorizer_configuration
    if body.authorizer_type == "NONE":
        if config is not None:
            raise BadRequest("authorizerConfiguration is only allowed with authorizerType CUSTOM_JWT")
        return None
    if config is None or config.custom_jwt_authorizer is None:
        raise BadRequest("authorizerType CUSTOM_JWT needs authorizerConfiguration.customJWTAuthorizer")
    jwt = config.custom_jwt_authorizer
    parts = urlsplit(jwt.discovery_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest("customJWTAuthorizer.discoveryUrl must be an absolute http(s) URL")
    # its keys decide who the users are: not over a network anyone could tamper with
    deps.guard.check_https(jwt.discovery_url, "customJWTAuthorizer.discoveryUrl")
    if not jwt.allowed_audience and not jwt.allowed_clients:
        raise BadRequest("customJWTAuthorizer needs allowedAudience or allowedClients (or both)")
    try:
        await deps.jwt.metadata(jwt.discovery_url)
    except IssuerUnavailable as exc:
        raise BadRequest(f"customJWTAuthorizer.discoveryUrl: {exc}") from None
    stored = msgspec.to_builtins(jwt)
    if jwt.login_client is not None:
        stored["loginClient"] = {"clientId": jwt.login_client.client_id}  # the secret is identity's
    return {"customJWTAuthorizer": stored}


def _with_login_secret(authorizer: rpc.JwtAuthorizer | None, body: GatewayBody) -> rpc.JwtAuthorizer | None:
    """The authorizer for identity, with the login client's secret from the admin's body."""
    config = body.authorizer_configuration
    login = config.custom_jwt_authorizer.login_client if config and config.custom_jwt_authorizer else None
    if authorizer is None or login is None:
        return authorizer
    return msgspec.structs.replace(
        authorizer, login_client=rpc.LoginClient(client_id=login.client_id, client_secret=login.client_secret)
    )


async def _config(deps: Deps, body: GatewayBody) -> Doc:
    """The stored configuration of a gateway body, after the rules an admin must follow."""
    check_name(body.name, "gateway")
    check_description(body.description)
    authorizer = await _authorizer(deps, body)
    mcp = body.protocol_configuration.mcp
    versions = list(dict.fromkeys(mcp.supported_versions))
    unknown = [v for v in versions if v not in SUPPORTED_PROTOCOL_VERSIONS]
    if not versions or unknown:
        raise BadRequest(
            "protocolConfiguration.mcp.supportedVersions must be a non-empty subset of "
            f"{list(SUPPORTED_PROTOCOL_VERSIONS)}"
        )
    protocol: dict[str, Any] = {"mcp": {"supportedVersions": versions}}
    if mcp.instructions is not None:
        protocol["mcp"]["instructions"] = mcp.instructions
    protocol["mcp"].update(_search_config(mcp))
    return {
        "name": body.name,
        "description": body.description,
        "authorizerType": body.authorizer_type,
        "authorizerConfiguration": authorizer,
        "protocolConfiguration": protocol,
    }


def _search_config(mcp: McpProtocol) -> Doc:
    """The stored tool-search settings: ``searchType`` SEMANTIC lists and answers the search tool;
    ``toolListMode`` SEARCH_ONLY lists it alone with the ``pinnedTools`` (docs/search.md)."""
    stored: Doc = {}
    if mcp.search_type is not None:
        if mcp.search_type != "SEMANTIC":
            raise BadRequest(
                'protocolConfiguration.mcp.searchType must be "SEMANTIC" or absent, '
                f"not {mcp.search_type[:40]!r}"
            )
        stored["searchType"] = mcp.search_type
    if mcp.tool_list_mode is not None:
        if mcp.tool_list_mode not in ("ALL", SEARCH_ONLY):
            raise BadRequest(
                'protocolConfiguration.mcp.toolListMode must be "ALL" or "SEARCH_ONLY", '
                f"not {mcp.tool_list_mode[:40]!r}"
            )
        if mcp.tool_list_mode == SEARCH_ONLY and mcp.search_type is None:
            raise BadRequest(
                'protocolConfiguration.mcp.toolListMode "SEARCH_ONLY" needs searchType "SEMANTIC": '
                "the search tool is how clients find the tools it leaves out"
            )
        stored["toolListMode"] = mcp.tool_list_mode
    if mcp.pinned_tools:
        if mcp.tool_list_mode != SEARCH_ONLY:
            raise BadRequest(
                'protocolConfiguration.mcp.pinnedTools applies only with toolListMode "SEARCH_ONLY"'
            )
        for name in mcp.pinned_tools:
            target, separator, tool = name.partition(SEPARATOR)
            if not (target and separator and tool):
                raise BadRequest(
                    f"protocolConfiguration.mcp.pinnedTools: {name[:120]!r} is not a tool name as tools/list "
                    f"gives it (<target>{SEPARATOR}<tool>)"
                )
        stored["pinnedTools"] = list(dict.fromkeys(mcp.pinned_tools))
    return stored


def has_login_client(gateway: Doc) -> bool:
    """Whether identity itself checks who consents for this gateway's users (and completes for them)."""
    config = (gateway.get("authorizerConfiguration") or {}).get("customJWTAuthorizer") or {}
    return bool(config.get("loginClient"))


def check_user_auth_allowed(gateway: Doc) -> None:
    """AUTHORIZATION_CODE targets need users (CUSTOM_JWT) and URL elicitation (protocol 2025-11-25)."""
    if gateway["authorizerType"] != "CUSTOM_JWT":
        raise BadRequest("AUTHORIZATION_CODE targets need a gateway with authorizerType CUSTOM_JWT (users)")
    if not any(v >= "2025-11-25" for v in gateway["protocolConfiguration"]["mcp"]["supportedVersions"]):
        raise BadRequest(
            "AUTHORIZATION_CODE targets need protocolConfiguration.mcp.supportedVersions to include "
            "2025-11-25 (URL elicitation)"
        )


def jwt_authorizer(gateway: Doc) -> rpc.JwtAuthorizer | None:
    """The gateway's inbound authorizer as identity's workload identity holds it."""
    config = (gateway.get("authorizerConfiguration") or {}).get("customJWTAuthorizer")
    return msgspec.convert(config, rpc.JwtAuthorizer) if config else None


async def sync_workload_identity(deps: Deps, gateway: Doc, body: GatewayBody | None = None) -> None:
    """Tell identity what the gateway's workload trusts: its authorizer and its targets' return URLs
    (and, from an admin's ``body``, a new login-client secret; without one identity keeps its own)."""
    authorizer = jwt_authorizer(gateway)
    await deps.identity.call(
        rpc.UpdateWorkloadIdentity(
            name=gateway["_id"],
            allowed_resource_oauth2_return_urls=await deps.store.return_urls(gateway["_id"]),
            jwt_authorizer=_with_login_secret(authorizer, body) if body else authorizer,
        ),
        rpc.WorkloadIdentity,
    )


async def create(deps: Deps, body: GatewayBody) -> Doc:
    config = await _config(deps, body)
    gateway_id = f"{body.name.lower()}-{secrets.token_hex(5)}"
    now = time.time()
    doc = {
        "_id": gateway_id,
        **config,
        "status": "READY",
        "generation": 1,
        "createdAt": now,
        "updatedAt": now,
    }
    await deps.store.insert_gateway(doc)
    try:
        await deps.identity.call(
            rpc.CreateWorkloadIdentity(
                name=gateway_id, jwt_authorizer=_with_login_secret(jwt_authorizer(doc), body)
            ),
            rpc.WorkloadIdentity,
        )
        await bus.publish_event(
            deps.nats, new_event(GatewayCreated, source=SOURCE, gateway_id=gateway_id, name=body.name)
        )
    except Exception:
        await deps.store.delete_gateway(gateway_id)  # the create changes nothing when it fails
        raise
    await deps.changed(gateway_id, None)
    return doc


async def get(deps: Deps, gateway_id: str) -> Doc:
    doc = await deps.store.get_gateway(gateway_id)
    if doc is None:
        raise NotFound(f"gateway {gateway_id!r} not found")
    return doc


async def list_(deps: Deps, max_results: int | None, next_token: str | None) -> tuple[list[Doc], str | None]:
    size, after = parse_page(max_results, next_token)
    docs = await deps.store.list_gateways(size, after)
    return docs[:size], page_token(docs[size - 1]["_id"] if len(docs) > size else None)


async def update(deps: Deps, gateway_id: str, body: GatewayBody) -> Doc:
    await get(deps, gateway_id)
    config = await _config(deps, body)
    if await deps.store.count_targets(gateway_id, grant_type="AUTHORIZATION_CODE"):
        check_user_auth_allowed(config)
        if not has_login_client(config) and await deps.store.count_targets(
            gateway_id, grant_type="AUTHORIZATION_CODE", without_return_url=True
        ):
            raise BadRequest(
                "customJWTAuthorizer.loginClient is needed by this gateway's AUTHORIZATION_CODE targets "
                "without defaultReturnUrl (identity completes their users' consents)"
            )
    doc = await deps.store.replace_gateway(gateway_id, {**config, "updatedAt": time.time()})
    if doc is None:
        raise NotFound(f"gateway {gateway_id!r} not found")
    await sync_workload_identity(deps, doc, body)
    await deps.changed(gateway_id, None)
    await bus.publish_event(
        deps.nats, new_event(GatewayUpdated, source=SOURCE, gateway_id=gateway_id, name=body.name)
    )
    return doc


async def delete(deps: Deps, gateway_id: str) -> Doc:
    doc = await get(deps, gateway_id)
    if await deps.store.count_targets(gateway_id):
        raise Conflict(f"gateway {gateway_id!r} still has targets: delete them first")
    await deps.store.delete_gateway(gateway_id)
    await deps.changed(gateway_id, None)
    await bus.publish_event(deps.nats, new_event(GatewayDeleted, source=SOURCE, gateway_id=gateway_id))
    try:
        await deps.identity.call(rpc.DeleteWorkloadIdentity(name=gateway_id), rpc.Deleted)
    except NotFound:
        pass
    return {**doc, "status": "DELETING"}
