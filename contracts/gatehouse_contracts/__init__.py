"""Gatehouse's wire: bus events, identity RPC messages, subject names, MCP wire shapes and client."""

from . import bus, config, errors, events, http, jsonrpc, locks, mcp_client, mongo, rpc, subjects, tools

__all__ = [
    "bus",
    "config",
    "errors",
    "events",
    "http",
    "jsonrpc",
    "locks",
    "mcp_client",
    "mongo",
    "rpc",
    "subjects",
    "tools",
]
