"""Gatehouse's wire: bus events, identity RPC messages, subject names, MCP wire shapes and client,
and the target lifecycle both the gateway and the sync-worker follow."""

from . import (
    bus,
    config,
    errors,
    events,
    http,
    jsonrpc,
    lifecycle,
    locks,
    mcp_client,
    mongo,
    rpc,
    subjects,
    tools,
)

__all__ = [
    "bus",
    "config",
    "errors",
    "events",
    "http",
    "jsonrpc",
    "lifecycle",
    "locks",
    "mcp_client",
    "mongo",
    "rpc",
    "subjects",
    "tools",
]
