"""MCP 2026-07-28's per-request rules, pure: which era a request belongs to, the ``_meta`` envelope,
the mirrored ``Mcp-*`` headers and the ``x-mcp-header`` parameters (transports/streamable-http,
basic/index; /work/shared/reference/mcp-2026-07-28/).

Every refusal is a ``ModernError``: the HTTP status and the JSON-RPC error the spec names for it
(400 -32602 a malformed envelope, 400 -32020 a header that disagrees with the body, 400 -32022 a
version we do not serve, 400 -32021 a capability the client did not declare).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.mcp_client import SUPPORTED_PROTOCOL_VERSIONS, HeaderMap

MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSIONS = frozenset(SUPPORTED_PROTOCOL_VERSIONS)  # the initialize era
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
ENVELOPE_PREFIX = "io.modelcontextprotocol/"  # the envelope's keys: ours, never forwarded to a target
NAME_PARAMS = {"tools/call": "name"}  # method -> the param mirrored as Mcp-Name (of those we serve)
PARAM_HEADER = "mcp-param-"

_SENTINEL = re.compile(r"=\?base64\?(.*)\?=", re.DOTALL)


class ModernError(Exception):
    """Refuse a 2026-07-28 request: the HTTP status and the JSON-RPC error to answer with."""

    def __init__(self, status: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


def is_legacy(version: str | None) -> bool:
    """Absent or a handshake-era ``MCP-Protocol-Version``: the initialize era (today's path)."""
    return version is None or version in HANDSHAKE_VERSIONS


def unsupported_version(requested: str, handshake: Iterable[str]) -> ModernError:
    """-32022 naming both eras' versions this gateway serves (the client picks one and retries)."""
    return ModernError(
        400,
        jsonrpc.UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": [MODERN_VERSION, *handshake], "requested": requested[:40]},
    )


def mismatch(message: str) -> ModernError:
    return ModernError(400, jsonrpc.HEADER_MISMATCH, f"Header mismatch: {message}")


@dataclass(frozen=True)
class Envelope:
    """The per-request ``_meta`` every 2026-07-28 request carries."""

    protocol_version: str
    capabilities: dict[str, Any]

    @property
    def url_elicitation(self) -> bool:
        """The client declared URL-mode elicitation (``{"elicitation": {"url": {}}}``)."""
        elicitation = self.capabilities.get("elicitation")
        return isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)


def envelope(params: dict[str, Any]) -> Envelope:
    """The request's envelope, or 400 -32602 naming what is missing."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise ModernError(
            400,
            jsonrpc.INVALID_PARAMS,
            f"Invalid params: params._meta must be an object with {PROTOCOL_VERSION_KEY!r} "
            f"and {CLIENT_CAPABILITIES_KEY!r}",
        )
    missing = [key for key in (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY) if key not in meta]
    if missing:
        raise ModernError(
            400, jsonrpc.INVALID_PARAMS, f"Invalid params: params._meta lacks {', '.join(missing)}"
        )
    version, capabilities = meta[PROTOCOL_VERSION_KEY], meta[CLIENT_CAPABILITIES_KEY]
    if not isinstance(version, str) or not isinstance(capabilities, dict):
        raise ModernError(
            400,
            jsonrpc.INVALID_PARAMS,
            f"Invalid params: {PROTOCOL_VERSION_KEY} must be a string and "
            f"{CLIENT_CAPABILITIES_KEY} an object",
        )
    return Envelope(version, capabilities)


def mcp_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's ``mcp-*`` headers by lower-case name (ASGI names are lower-case). A repeated
    one is a mismatch: a proxy reading the first copy and we the last would disagree."""
    found: dict[str, str] = {}
    for key, value in raw:
        if key[:4] == b"mcp-":
            name = key.decode("latin-1")
            if name in found:
                raise mismatch(f"the {name} header appears more than once")
            found[name] = value.decode("latin-1")
    return found


def decode_value(value: str | None) -> str | None:
    """A mirrored header's value: as sent, or decoded from ``=?base64?...?=``; None if it is
    malformed or not printable ASCII (the base64 form carries anything else)."""
    if value is None or not (value.isascii() and value.isprintable()):
        return None
    match = _SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match.group(1)
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode() != payload:  # only the canonical form
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_headers(headers: Mapping[str, str], env: Envelope, method: str, params: dict[str, Any]) -> None:
    """``MCP-Protocol-Version``, ``Mcp-Method`` and (tools/call) ``Mcp-Name`` say what the body says."""
    if headers.get("mcp-protocol-version") != env.protocol_version:
        raise mismatch("MCP-Protocol-Version does not match params._meta's protocolVersion")
    if headers.get("mcp-method") != method:
        raise mismatch("Mcp-Method does not match the body's method")
    name_param = NAME_PARAMS.get(method)
    if name_param is not None:
        value = params.get(name_param)
        if isinstance(value, str) and decode_value(headers.get("mcp-name")) != value:
            raise mismatch(f"Mcp-Name does not match the body's {name_param!r}")


def _rendered(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _at(arguments: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(arguments, dict):
            return None
        arguments = arguments.get(key)
    return arguments


def check_param_headers(params_map: HeaderMap, arguments: dict[str, Any], headers: Mapping[str, str]) -> None:
    """Each ``Mcp-Param-<token>`` is there exactly when its argument is, and says the same.
    Integers compare as numbers (``42`` and ``42.0`` agree)."""
    for path, token in params_map:
        raw = headers.get(PARAM_HEADER + token.lower())
        value = _at(arguments, path)
        name = f"Mcp-Param-{token}"
        if value is None:
            if raw is not None:
                raise mismatch(f"{name} is sent but the argument {'.'.join(path)!r} is not")
            continue
        rendered = _rendered(value)
        if raw is None:
            raise mismatch(f"{name} is missing for the argument {'.'.join(path)!r}")
        decoded = decode_value(raw)
        if rendered is None or decoded is None or not _same(value, rendered, decoded):
            raise mismatch(f"{name} does not match the argument {'.'.join(path)!r}")


def _same(value: Any, rendered: str, decoded: str) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        whole, dot, fraction = decoded.partition(".")
        if whole.lstrip("-").isdigit() and (not dot or fraction.isdigit() and set(fraction) == {"0"}):
            return int(whole) == int(value)
        return False
    return decoded == rendered
