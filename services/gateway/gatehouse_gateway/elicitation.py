"""A tools/call's per-call OAuth overrides and the answer when the user must consent first.

A client may put ``_meta["gatehouse/oauth"] = {"returnUrl": ..., "forceAuthentication": ...}`` on
one ``tools/call``; ``split_meta`` takes it out (the target never sees it) and checks its shape.
When the user has not consented yet, ``authorization_required`` answers as the session's protocol
version understands: a -32042 URL elicitation (2025-11-25 on) or an ``isError`` result with the URL.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.jsonrpc import JsonRpcError

from .catalog import GatewayCatalog, RoutedTarget

OAUTH_META = "gatehouse/oauth"  # params._meta key: {returnUrl, forceAuthentication} for one call
URL_ELICITATION_SINCE = "2025-11-25"


def split_meta(meta: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the _meta to forward, our ``gatehouse/oauth`` overrides for this one call)."""
    if not isinstance(meta, dict):
        return None, {}
    if OAUTH_META not in meta:
        return meta, {}
    forwarded = {k: v for k, v in meta.items() if k != OAUTH_META}
    override = meta[OAUTH_META]
    if (
        not isinstance(override, dict)
        or set(override) - {"returnUrl", "forceAuthentication"}
        or not isinstance(override.get("returnUrl", ""), str)
        or not isinstance(override.get("forceAuthentication", False), bool)
    ):
        raise JsonRpcError(
            jsonrpc.INVALID_PARAMS,
            f'Invalid params: _meta["{OAUTH_META}"] takes '
            '{"returnUrl": string, "forceAuthentication": boolean}',
        )
    return forwarded or None, override


def tool_call(
    params: dict[str, Any], meta: Any, cat: GatewayCatalog
) -> tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any], RoutedTarget, str]:
    """A tools/call's checked params (either era): its name, arguments, the _meta to forward, our
    overrides, and where it goes (the target and the tool's own name); -32602 for what is wrong."""
    name = params.get("name")
    arguments = params.get("arguments", {})
    if not isinstance(name, str):
        raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: name must be a string")
    if not isinstance(arguments, dict):
        raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: arguments must be an object")
    meta, override = split_meta(meta)
    if "returnUrl" in override and override["returnUrl"] not in cat.return_urls:
        raise JsonRpcError(
            jsonrpc.INVALID_PARAMS, "Invalid params: the returnUrl is not on this gateway's allow-list"
        )
    route = cat.routes.get(name)
    if route is None:
        raise JsonRpcError(jsonrpc.INVALID_PARAMS, f"Unknown tool: {name[:200]}")
    return name, arguments, meta, override, route[0], route[1]


def consent_message(target_name: str) -> str:
    """What a URL elicitation for a consent tells the user (either era)."""
    return f"Authorization is required to use {target_name!r} on your behalf: open the URL, then retry."


def authorization_required(target_name: str, url: str, elicitation_id: str, protocol: str) -> bytes:
    """-32042 URL elicitation (2025-11-25 on); an isError result with the URL for older clients."""
    message = consent_message(target_name)
    if protocol < URL_ELICITATION_SINCE:
        text = f"{message} {url}"
        return msgspec.json.encode({"content": [{"type": "text", "text": text}], "isError": True})
    raise JsonRpcError(
        jsonrpc.URL_ELICITATION_REQUIRED,
        f"Authorization required for target {target_name!r}",
        {"elicitations": [{"mode": "url", "elicitationId": elicitation_id, "url": url, "message": message}]},
    )
