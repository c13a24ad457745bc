"""``gatehouse status`` (every target of every gateway) and ``gatehouse tools <gateway>``."""

from __future__ import annotations

from typing import Any

import click

from .api import Doc
from .context import Context, json_option, pass_context
from .mcp_tools import list_tools
from .output import Column, emit


def reasons(target: Doc) -> list[str]:
    """Why a target is where it is; a target waiting for a consent says where to give it."""
    out = list(target.get("statusReasons") or [])
    oauth2 = (target.get("authorizationData") or {}).get("oauth2")
    if oauth2:
        out.append(f"consent at {oauth2['authorizationUrl']}")
    return out


STATUS_COLUMNS: list[Column] = [
    ("GATEWAY", lambda r: r["gatewayName"]),
    ("TARGET", lambda r: r["name"]),
    ("ID", lambda r: r["targetId"]),
    ("STATUS", lambda r: r["status"]),
    ("TOOLS", lambda r: r["toolCount"]),
    ("REASONS", reasons),
]
TOOL_COLUMNS: list[Column] = [
    ("NAME", lambda t: t["name"]),
    ("DESCRIPTION", lambda t: " ".join((t.get("description") or "").split())[:80]),
]


@click.command()
@click.argument("gateway", required=False)
@json_option
@pass_context
def status(ctx: Context, gateway: str | None, as_json: bool) -> None:
    """Every target of every gateway (or of GATEWAY, by id or name): status, tools, reasons."""
    gateways = [ctx.api.gateway(gateway)] if gateway else ctx.api.gateways()
    rows = [
        {**target, "gatewayName": g["name"]} for g in gateways for target in ctx.api.targets(g["gatewayId"])
    ]
    emit(rows, as_json, STATUS_COLUMNS)


@click.command()
@click.argument("gateway")
@click.option(
    "--token",
    envvar="GATEHOUSE_USER_TOKEN",
    help="a gateway user's JWT, for CUSTOM_JWT gateways (or env GATEHOUSE_USER_TOKEN)",
)
@json_option
@pass_context
def tools(ctx: Context, gateway: str, token: str | None, as_json: bool) -> None:
    """The tools GATEWAY (id or name) serves its MCP clients, from its MCP endpoint."""
    found = ctx.api.gateway(gateway)
    listed: list[dict[str, Any]] = list_tools(found["gatewayUrl"], token)
    emit(listed, as_json, TOOL_COLUMNS)
