"""The admin API: gateways and targets (docs/admin-api.md); every route needs the admin token."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gatehouse_contracts.errors import NotFound
from gatehouse_contracts.http import ERROR_RESPONSES, AdminAuth, decode_body, json_response, read_body

from . import gateways, targets
from .catalog import Catalog
from .deps import Deps
from .models import GatewayBody, SynchronizeBody, TargetBody
from .user_auth import Inbound

MaxResults = Annotated[int | None, Query(alias="maxResults", ge=1, le=1000)]
NextToken = Annotated[str | None, Query(alias="nextToken", max_length=512)]


def router(deps: Deps, auth: AdminAuth, max_body_bytes: int) -> APIRouter:
    async def admin(request: Request) -> None:
        await auth.check(request)

    api = APIRouter(dependencies=[Depends(admin)], responses=ERROR_RESPONSES)

    async def body(request: Request) -> bytes:
        return await read_body(request, max_body_bytes)

    @api.post("/gateways", status_code=202)
    async def create_gateway(request: Request) -> Response:
        """Create a gateway and its workload identity."""
        doc = await gateways.create(deps, decode_body(await body(request), GatewayBody))
        return json_response(gateways.render(deps, doc), 202)

    @api.get("/gateways")
    async def list_gateways(max_results: MaxResults = None, next_token: NextToken = None) -> Response:
        """List gateways."""
        docs, token = await gateways.list_(deps, max_results, next_token)
        return json_response({"items": [gateways.render(deps, d) for d in docs], "nextToken": token})

    @api.get("/gateways/{gateway_id}")
    async def get_gateway(gateway_id: str) -> Response:
        """Get a gateway."""
        return json_response(gateways.render(deps, await gateways.get(deps, gateway_id)))

    @api.put("/gateways/{gateway_id}", status_code=202)
    async def update_gateway(gateway_id: str, request: Request) -> Response:
        """Replace a gateway's configuration."""
        doc = await gateways.update(deps, gateway_id, decode_body(await body(request), GatewayBody))
        return json_response(gateways.render(deps, doc), 202)

    @api.delete("/gateways/{gateway_id}", status_code=202)
    async def delete_gateway(gateway_id: str) -> Response:
        """Delete a gateway that has no targets, and its workload identity."""
        doc = await gateways.delete(deps, gateway_id)
        return json_response({"gatewayId": doc["_id"], "status": "DELETING"}, 202)

    @api.post("/gateways/{gateway_id}/targets", status_code=202)
    async def create_target(gateway_id: str, request: Request) -> Response:
        """Attach an MCP server to a gateway; its tools are synchronized in the background."""
        doc = await targets.create(deps, gateway_id, decode_body(await body(request), TargetBody))
        return json_response(targets.render(doc), 202)

    @api.get("/gateways/{gateway_id}/targets")
    async def list_targets(
        gateway_id: str, max_results: MaxResults = None, next_token: NextToken = None
    ) -> Response:
        """List a gateway's targets."""
        docs, token = await targets.list_(deps, gateway_id, max_results, next_token)
        return json_response({"items": [targets.render(d) for d in docs], "nextToken": token})

    @api.get("/gateways/{gateway_id}/targets/{target_id}")
    async def get_target(gateway_id: str, target_id: str) -> Response:
        """Get a target with its status."""
        return json_response(targets.render(await targets.get(deps, gateway_id, target_id)))

    @api.get("/gateways/{gateway_id}/targets/{target_id}/tools")
    async def get_target_tools(gateway_id: str, target_id: str) -> Response:
        """The tool definitions a target exposes, as synchronized or given inline (no name prefix)."""
        found = await targets.get(deps, gateway_id, target_id, with_tools=True)
        return Response(b'{"items":' + (found.tools_json or b"[]") + b"}", media_type="application/json")

    @api.put("/gateways/{gateway_id}/targets/{target_id}", status_code=202)
    async def update_target(gateway_id: str, target_id: str, request: Request) -> Response:
        """Replace a target's configuration; it is synchronized again."""
        doc = await targets.update(deps, gateway_id, target_id, decode_body(await body(request), TargetBody))
        return json_response(targets.render(doc), 202)

    @api.delete("/gateways/{gateway_id}/targets/{target_id}", status_code=202)
    async def delete_target(gateway_id: str, target_id: str) -> Response:
        """Remove a target; its tools leave tools/list at once."""
        deleted = await targets.delete(deps, gateway_id, target_id)
        return json_response({"gatewayId": gateway_id, "targetId": deleted.id, "status": "DELETING"}, 202)

    @api.put("/gateways/{gateway_id}/synchronizeTargets", status_code=202)
    async def synchronize_targets(gateway_id: str, request: Request) -> Response:
        """List the tools of the named targets again."""
        docs = await targets.synchronize(deps, gateway_id, decode_body(await body(request), SynchronizeBody))
        return json_response({"targets": [targets.render(d) for d in docs]}, 202)

    return api


def metadata(deps: Deps, catalog: Catalog, inbound: Inbound) -> APIRouter:
    """The public documents next to the MCP endpoints (no admin token)."""
    api = APIRouter(responses=ERROR_RESPONSES)

    @api.get("/.well-known/oauth-protected-resource/gateways/{gateway_id}/mcp")
    async def protected_resource_metadata(gateway_id: str) -> Response:
        """RFC 9728 metadata of a CUSTOM_JWT gateway's MCP endpoint: where its users get tokens."""
        cat = catalog.gateways.get(gateway_id)
        if cat is None or cat.gateway["authorizerType"] != "CUSTOM_JWT":
            raise NotFound(f"gateway {gateway_id!r} has no protected-resource metadata")
        issuer = await inbound.issuer(cat.gateway)  # IssuerUnavailable: a 503 saying so
        config = cat.gateway["authorizerConfiguration"]["customJWTAuthorizer"]
        document: dict[str, Any] = {
            "resource": gateways.gateway_url(deps, gateway_id),
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": cat.gateway["name"],
        }
        if config.get("allowedScopes"):
            document["scopes_supported"] = config["allowedScopes"]
        return json_response(document)

    return api


# the bodies the routes decode themselves, for the OpenAPI document
BODIES: dict[tuple[str, str], type[Any]] = {
    ("/gateways", "post"): GatewayBody,
    ("/gateways/{gateway_id}", "put"): GatewayBody,
    ("/gateways/{gateway_id}/targets", "post"): TargetBody,
    ("/gateways/{gateway_id}/targets/{target_id}", "put"): TargetBody,
    ("/gateways/{gateway_id}/synchronizeTargets", "put"): SynchronizeBody,
}
