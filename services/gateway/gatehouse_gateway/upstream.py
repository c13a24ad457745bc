"""Upstream MCP sessions, one per target generation, opened once and reused for every call."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gatehouse_contracts.mcp_client import McpSession, UpstreamSessionLost

from .catalog import RoutedTarget


class UpstreamPool:
    def __init__(self, http: httpx.AsyncClient, timeout: float) -> None:
        self._http = http
        self._timeout = timeout
        self._sessions: dict[tuple[str, int], McpSession] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def _session(self, target: RoutedTarget) -> McpSession:
        key = (target.target_id, target.generation)
        if (session := self._sessions.get(key)) is not None:
            return session
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (session := self._sessions.get(key)) is not None:
                return session
            session = McpSession(self._http, target.endpoint, timeout=self._timeout)
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
        except UpstreamSessionLost:
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
