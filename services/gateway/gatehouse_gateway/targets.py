"""Target operations and their rules: spec from a request body, the 409s (the statuses an operation
leaves come from ``gatehouse_contracts.lifecycle``)."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec

from gatehouse_contracts import bus, lifecycle
from gatehouse_contracts.events import (
    TargetCreated,
    TargetDeleted,
    TargetSyncRequested,
    TargetUpdated,
    new_event,
)
from gatehouse_contracts.http import page_token, parse_page
from gatehouse_contracts.lifecycle import PENDING, TARGET_ID_LENGTH, Target, TargetSpec, TargetStatus, stored
from gatehouse_contracts.netguard import shown
from gatehouse_contracts.tools import InvalidTool, validate_tools

from .deps import Deps
from .errors import BadRequest, Conflict, NotFound
from .gateways import SOURCE, check_user_auth_allowed, has_login_client, sync_workload_identity
from .gateways import get as get_gateway
from .models import (
    OauthCredentialProvider,
    OauthCredentials,
    SynchronizeBody,
    TargetBody,
    check_description,
    check_name,
)
from .store import Doc

MAX_INLINE_TOOLS = 1000
_ID_ALPHABET = string.ascii_uppercase + string.digits


def render(target: Target) -> dict[str, Any]:
    spec, status = target.spec, target.status
    server: dict[str, Any] = {"endpoint": spec.endpoint}
    if spec.inline_payload is not None:
        server["mcpToolSchema"] = {"inlinePayload": spec.inline_payload}
    out = {
        "gatewayId": target.gateway_id,
        "targetId": target.id,
        "name": target.name,
        "description": target.description,
        "targetConfiguration": {"mcp": {"mcpServer": server}},
        "credentialProviderConfigurations": spec.credentials,
        "status": status.status,
        "statusReasons": status.status_reasons,
        "authorizationStatus": status.authorization_status,
        "lastSynchronizedAt": status.last_synchronized_at,
        "toolCount": status.tool_count,
        "protocolVersion": status.protocol_version,
        "generation": target.generation,
        "observedGeneration": status.observed_generation,
        "createdAt": target.created_at,
        "updatedAt": target.updated_at,
    }
    if status.authorization_data:
        out["authorizationData"] = msgspec.to_builtins(status.authorization_data)
    return out


def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(endpoint) > 2048:
        raise BadRequest(f"endpoint {shown(endpoint)!r} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise BadRequest("endpoint must not carry credentials in the URL")
    return endpoint


def inline_tools(payload: str) -> list[dict[str, Any]]:
    """The tools of an ``mcpToolSchema.inlinePayload`` (a JSON string ``{"tools": [...]}``)."""
    try:
        doc = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest("mcpToolSchema.inlinePayload is not valid JSON (or nests too deeply)") from None
    if not isinstance(doc, dict) or "tools" not in doc:
        raise BadRequest('mcpToolSchema.inlinePayload must be a JSON object {"tools": [...]}')
    try:
        return validate_tools(doc["tools"], MAX_INLINE_TOOLS)
    except InvalidTool as exc:
        raise BadRequest(f"mcpToolSchema.inlinePayload: {exc}") from None


def _spec(deps: Deps, gateway: Doc, body: TargetBody) -> tuple[TargetSpec, list[dict[str, Any]] | None]:
    """The stored spec of a target body and its inline tools (None when the tools come from a sync).

    ``grantType`` and ``defaultReturnUrl`` are copied to the top of the spec for queries.
    """
    check_name(body.name, "target")
    check_description(body.description)
    if len(body.credential_provider_configurations) != 1:
        raise BadRequest("credentialProviderConfigurations must hold exactly one configuration")
    credentials = body.credential_provider_configurations[0]
    oauth = (
        credentials.credential_provider.oauth_credential_provider
        if isinstance(credentials, OauthCredentials)
        else None
    )
    server = body.target_configuration.mcp.mcp_server
    if oauth is not None:
        _check_oauth(deps, gateway, oauth, server.endpoint, inline=server.mcp_tool_schema is not None)
    payload = server.mcp_tool_schema.inline_payload if server.mcp_tool_schema else None
    tools = inline_tools(payload) if payload is not None else None
    spec = TargetSpec(
        endpoint=check_endpoint(server.endpoint),
        inline_payload=payload,
        credentials=[msgspec.to_builtins(credentials)],
        grant_type=oauth.grant_type if oauth else None,
        default_return_url=oauth.default_return_url if oauth else None,
    )
    return spec, tools


def _check_https(deps: Deps, url: str, what: str) -> None:
    deps.guard.check_https(url, what)  # EndpointDenied is a BadRequest


async def _check_reachable(deps: Deps, endpoint: str) -> None:
    """Refuse an endpoint on a denied network (``TARGET_DENIED_NETWORKS``), also by what it resolves to."""
    await deps.guard.check_resolved(endpoint)  # EndpointDenied is a BadRequest


def _check_oauth(
    deps: Deps, gateway: Doc, oauth: OauthCredentialProvider, endpoint: str, *, inline: bool
) -> None:
    """Rules of a target that receives tokens: over https (loopback aside), like its return URL."""
    if oauth.grant_type == "AUTHORIZATION_CODE":
        check_user_auth_allowed(gateway)
        url = oauth.default_return_url or ""
        parts = urlsplit(url)
        # users of a gateway with a login client consent without an app: identity completes for them;
        # an admin's consent for a sync still ends at a return URL (an admin is not a gateway user)
        optional = inline and has_login_client(gateway)
        if (url or not optional) and (
            parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or len(url) > 2048
        ):
            raise BadRequest(
                "AUTHORIZATION_CODE targets need defaultReturnUrl, an absolute http(s) URL (optional only "
                "with mcpToolSchema on a gateway whose customJWTAuthorizer has a loginClient)"
            )
        if url:
            _check_https(deps, url, "defaultReturnUrl")
    _check_https(deps, endpoint, "the endpoint of a target with OAUTH credentials")
    if not 1 <= len(oauth.provider_name) <= 128:
        raise BadRequest("providerName must name a credential provider of the identity service")
    if len(oauth.scopes) > 50 or any(not s or " " in s for s in oauth.scopes):
        raise BadRequest("scopes must be at most 50 non-empty scope names without spaces")


def _initial_status(
    phase: str, generation: int, tools: list[dict[str, Any]] | None, spec: TargetSpec
) -> TargetStatus:
    """The status an admin create or update leaves (``lifecycle.initial``)."""
    return lifecycle.initial(
        phase,
        generation,
        tool_count=None if tools is None else len(tools),
        user_auth=spec.grant_type == "AUTHORIZATION_CODE",
        now=time.time(),
    )


def _refuse_if_pending(target: Target, action: str) -> None:
    if target.status.status in PENDING:
        raise Conflict(
            f"target {target.id!r} is waiting for authorization ({target.status.status}); cannot {action}"
        )


async def create(deps: Deps, gateway_id: str, body: TargetBody) -> Target:
    gateway = await get_gateway(deps, gateway_id)
    spec, tools = _spec(deps, gateway, body)
    await _check_reachable(deps, spec.endpoint)
    now = time.time()
    target_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(TARGET_ID_LENGTH))
    new = Target(
        id=target_id,
        gateway_id=gateway_id,
        name=body.name,
        description=body.description,
        spec=spec,
        generation=1,
        status=_initial_status(lifecycle.CREATING, 1, tools, spec),
        tools_json=msgspec.json.encode(tools or []),
        stamp=uuid.uuid4().hex,
        created_at=now,
        updated_at=now,
    )
    await deps.store.insert_target(new)
    event = new_event(TargetCreated, source=SOURCE, gateway_id=gateway_id, target_id=target_id, generation=1)
    try:
        if spec.default_return_url:
            await sync_workload_identity(deps, gateway)
        await bus.publish_event(deps.nats, event)
    except Exception:
        await deps.store.delete_target(gateway_id, target_id)  # the create changes nothing when it fails
        raise
    await deps.changed(gateway_id, target_id)
    return new


async def get(deps: Deps, gateway_id: str, target_id: str, *, with_tools: bool = False) -> Target:
    found = await deps.store.get_target(gateway_id, target_id, with_tools=with_tools)
    if found is None:
        raise NotFound(f"target {target_id!r} not found in gateway {gateway_id!r}")
    return found


async def list_(
    deps: Deps, gateway_id: str, max_results: int | None, next_token: str | None
) -> tuple[list[Target], str | None]:
    await get_gateway(deps, gateway_id)
    size, after = parse_page(max_results, next_token)
    found = await deps.store.list_targets(gateway_id, size, after)
    return found[:size], page_token(found[size - 1].id if len(found) > size else None)


async def update(deps: Deps, gateway_id: str, target_id: str, body: TargetBody) -> Target:
    gateway = await get_gateway(deps, gateway_id)
    current = await get(deps, gateway_id, target_id)
    _refuse_if_pending(current, "update")
    spec, tools = _spec(deps, gateway, body)
    await _check_reachable(deps, spec.endpoint)
    generation = current.generation + 1
    fields: Doc = {
        "name": body.name,
        "description": body.description,
        "spec": msgspec.to_builtins(spec),
        "generation": generation,
        "status": stored(_initial_status(lifecycle.UPDATING, generation, tools, spec)),
        "stamp": uuid.uuid4().hex,
        "updatedAt": time.time(),
    }
    if tools is not None:
        fields["toolsJson"] = msgspec.json.encode(tools)
    updated = await deps.store.update_target(gateway_id, target_id, current.generation, fields)
    if updated is None:
        raise Conflict(f"target {target_id!r} changed while this update ran; read it and try again")
    if spec.default_return_url != current.spec.default_return_url:
        await sync_workload_identity(deps, gateway)
    await deps.changed(gateway_id, target_id)
    await bus.publish_event(
        deps.nats,
        new_event(
            TargetUpdated, source=SOURCE, gateway_id=gateway_id, target_id=target_id, generation=generation
        ),
    )
    return updated


async def delete(deps: Deps, gateway_id: str, target_id: str) -> Target:
    current = await get(deps, gateway_id, target_id)
    _refuse_if_pending(current, "delete")
    await deps.store.delete_target(gateway_id, target_id)
    if current.spec.default_return_url:
        await sync_workload_identity(deps, await get_gateway(deps, gateway_id))
    await deps.changed(gateway_id, target_id)
    await bus.publish_event(
        deps.nats, new_event(TargetDeleted, source=SOURCE, gateway_id=gateway_id, target_id=target_id)
    )
    return msgspec.structs.replace(current, status=lifecycle.deleting(current.status))


async def synchronize(deps: Deps, gateway_id: str, body: SynchronizeBody) -> list[Target]:
    await get_gateway(deps, gateway_id)
    if not 1 <= len(body.target_id_list) <= 100:
        raise BadRequest("targetIdList must name 1 to 100 targets")
    currents = [await get(deps, gateway_id, target_id) for target_id in dict.fromkeys(body.target_id_list)]
    for current in currents:
        _refuse_if_pending(current, "synchronize")
        if current.spec.inline_payload is not None:
            raise BadRequest(f"target {current.id!r} has an mcpToolSchema: there is nothing to synchronize")
    out = []
    for current in currents:
        fields = {
            "status": stored(lifecycle.synchronizing(current.status)),
            "stamp": uuid.uuid4().hex,
            "updatedAt": time.time(),
        }
        synchronizing = await deps.store.update_target(gateway_id, current.id, current.generation, fields)
        if synchronizing is None:
            raise Conflict(f"target {current.id!r} changed while synchronizing; try again")
        await deps.changed(gateway_id, current.id)
        await bus.publish_event(
            deps.nats,
            new_event(
                TargetSyncRequested,
                source=SOURCE,
                gateway_id=gateway_id,
                target_id=current.id,
                generation=current.generation,
                request_id=uuid.uuid4().hex,
            ),
        )
        out.append(synchronizing)
    return out
