"""MCP tool definitions on the wire: validation of what a target (or an admin) hands us."""

from __future__ import annotations

import re
from typing import Any

from .errors import BadRequest
from .jsonrpc import MAX_DEPTH, depth_exceeds
from .mcp_client import HeaderMap

TOOL_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


class InvalidTool(BadRequest, ValueError):
    """A tool definition that clients could not use; the message names the tool and the fault."""


def validate_tool(tool: Any, index: int) -> dict[str, Any]:
    """Return the tool unchanged if it is a usable MCP tool definition, else raise ``InvalidTool``."""
    if not isinstance(tool, dict):
        raise InvalidTool(f"tool #{index} is not a JSON object")
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise InvalidTool(
            f"tool #{index} has an invalid name {str(name)[:60]!r}: "
            "it must be 1-128 characters of A-Z, a-z, 0-9, '_', '-' or '.'"
        )
    if depth_exceeds(tool, MAX_DEPTH):
        raise InvalidTool(f"tool {name!r} nests deeper than {MAX_DEPTH} levels")
    schema = tool.get("inputSchema")
    if not isinstance(schema, dict):
        raise InvalidTool(f"tool {name!r} has no inputSchema object")
    if schema.get("type", "object") != "object":
        raise InvalidTool(f'tool {name!r} has an inputSchema whose type is not "object"')
    for key in ("description", "title"):
        if key in tool and not isinstance(tool[key], str):
            raise InvalidTool(f"tool {name!r} has a {key} that is not a string")
    for key in ("outputSchema", "annotations", "_meta", "execution"):
        if key in tool and not isinstance(tool[key], dict):
            raise InvalidTool(f"tool {name!r} has an {key} that is not an object")
    return tool


def validate_tools(tools: Any, max_tools: int) -> list[dict[str, Any]]:
    """Validate a whole catalog: a list of valid tools, unique names, at most ``max_tools``."""
    if not isinstance(tools, list):
        raise InvalidTool('"tools" must be a list')
    if len(tools) > max_tools:
        raise InvalidTool(f"too many tools: {len(tools)} (the limit is {max_tools})")
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        validate_tool(tool, i)
        if tool["name"] in seen:
            raise InvalidTool(f"tool name {tool['name']!r} appears twice")
        seen.add(tool["name"])
    return tools


# -- 2026-07-28: parameters mirrored into headers (x-mcp-header) -------------------------------

_HEADER_KEY = "x-mcp-header"
_TCHAR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_MIRRORED_TYPES = ("string", "integer", "boolean")


def header_map(tool: dict[str, Any]) -> HeaderMap:
    """The ``x-mcp-header`` annotations of a (valid) tool's ``inputSchema``, checked against the
    rules of 2026-07-28 (a token, unique ignoring case, on a string, integer or boolean property
    reached from the root through ``properties`` alone); ``InvalidTool`` naming the fault if one
    breaks them (such a tool is left out of the catalog, as the revision asks of clients)."""
    name, schema = tool["name"], tool["inputSchema"]
    found: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[tuple[str, ...], dict[str, Any]]] = [((), schema)]
    while stack:  # the positions reached through "properties" only
        path, node = stack.pop()
        if path and _HEADER_KEY in node:
            header = node[_HEADER_KEY]
            where = ".".join(path)
            if not isinstance(header, str) or not _TCHAR.fullmatch(header):
                raise InvalidTool(f"tool {name!r}: the x-mcp-header of {where!r} is not an HTTP header token")
            if node.get("type") not in _MIRRORED_TYPES:
                raise InvalidTool(
                    f"tool {name!r}: x-mcp-header on {where!r}, which is not a string, integer or boolean"
                )
            found.append((path, header))
        properties = node.get("properties")
        if isinstance(properties, dict):
            stack += [((*path, key), sub) for key, sub in properties.items() if isinstance(sub, dict)]
    if _count_annotations(schema) != len(found):
        raise InvalidTool(
            f"tool {name!r}: an x-mcp-header is not on a property reached through properties alone"
        )
    names = [header.lower() for _, header in found]
    if len(set(names)) != len(names):
        raise InvalidTool(f"tool {name!r}: two x-mcp-header annotations name the same header")
    return tuple(sorted(found))


def _count_annotations(schema: Any) -> int:
    """How many ``x-mcp-header`` keys the schema holds anywhere (a ``properties`` map's own keys are
    property names, not annotations)."""
    count = 0
    stack: list[tuple[Any, bool]] = [(schema, False)]
    while stack:
        node, is_properties = stack.pop()
        if isinstance(node, dict):
            count += not is_properties and _HEADER_KEY in node
            stack += [(value, key == "properties" and not is_properties) for key, value in node.items()]
        elif isinstance(node, list):
            stack += [(value, False) for value in node]
    return count


def with_valid_headers(tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """A 2026-07-28 target's tools without those whose ``x-mcp-header`` annotations are invalid,
    and why each left out was."""
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    for tool in tools:
        try:
            header_map(tool)
        except InvalidTool as exc:
            dropped.append(str(exc))
            continue
        kept.append(tool)
    return kept, dropped
