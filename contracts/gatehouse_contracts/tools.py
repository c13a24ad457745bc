"""MCP tool definitions on the wire: validation of what a target (or an admin) hands us."""

from __future__ import annotations

import re
from typing import Any

from .errors import BadRequest
from .jsonrpc import MAX_DEPTH, depth_exceeds

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
