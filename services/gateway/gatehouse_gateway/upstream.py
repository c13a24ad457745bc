"""Upstream MCP sessions, one per target generation, opened once and reused for every call.

A target with an OAuth client (client credentials) gets its bearer header when its session opens;
a 401 later (the token expired or was revoked) opens the session again with a fresh token, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gatehouse_contracts.mcp_client import McpSession, UpstreamSessionLost, UpstreamUnauthorized

from .catalog import RoutedTarget

Headers = Callable[[RoutedTarget], Awaitable[dict[str, str]]]


class UpstreamPool:
    def __init__(self, http: httpx.AsyncClient, timeout: float, headers: Headers) -> None:
        self._http = http
        self._timeout = timeout
        self._headers = headers
        self._sessions: dict[tuple[str, int], McpSession] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def _session(self, target: RoutedTarget) -> McpSession:
        key = (target.target_id, target.generation)
        if (session := self._sessions.get(key)) is not None:
            return session
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (session := self._sessions.get(key)) is not None:
                return session
            headers = await self._headers(target) if target.oauth else {}
            session = McpSession(self._http, target.endpoint, timeout=self._timeout, headers=headers)
            await session.initialize()
            self._sessions[key] = session
            return session

    async def call_tool(
        self, target: RoutedTarget, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Call through the pooled session; a session the server forgot is opened again once."""
        session = await self._session(target)
        try:
            return await session.call_tool(tool, arguments, meta)
        except (UpstreamSessionLost, UpstreamUnauthorized) as exc:
            if isinstance(exc, UpstreamUnauthorized) and not target.oauth:
                raise
            self._sessions.pop((target.target_id, target.generation), None)
            session = await self._session(target)
            return await session.call_tool(tool, arguments, meta)

    async def forget(self, target_id: str) -> None:
        """Close every session of a target (it changed or went away)."""
        for key in [k for k in self._sessions if k[0] == target_id]:
            session = self._sessions.pop(key)
            self._locks.pop(key, None)
            await session.close()

    async def close(self) -> None:
        for key in list(self._sessions):
            await self._sessions.pop(key).close()
