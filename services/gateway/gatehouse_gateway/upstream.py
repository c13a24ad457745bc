"""Upstream MCP sessions, opened once and reused for every call: one per target generation, and one
per user for targets that act on a user's behalf.

A client-credentials target gets its bearer header when its session opens; a 401 later (token
expired or revoked) opens the session again with a fresh token, once. A user's session is opened
with the token the caller passes; a different token (refreshed) replaces the session.

At most ``max_sessions`` are kept: past that the least recently used idle ones are closed (a
session with a call in flight is never closed under it), so many users do not grow the pool
without bound. The locks that open sessions exist only while used (``KeyedLocks``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from gatehouse_contracts import tracing
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.locks import KeyedLocks
from gatehouse_contracts.mcp_client import (
    LATEST_PROTOCOL_VERSION,
    NO_OPTIONS,
    CallOptions,
    McpHttp,
    McpSession,
    ToolResult,
    UpstreamSessionLost,
    UpstreamUnauthorized,
    is_modern,
)
from gatehouse_contracts.target_auth import m2m_headers

from .catalog import RoutedTarget

Headers = Callable[[RoutedTarget], Awaitable[dict[str, str]]]
Key = tuple[str, int, str]


def client_credentials(identity: IdentityClient) -> Headers:
    """The headers of a target's session: a bearer token identity gets for the gateway itself
    (OAuth client credentials) when the target wants one, else none."""

    async def headers(target: RoutedTarget) -> dict[str, str]:
        if target.oauth is None:
            return {}
        return await m2m_headers(identity, target.gateway_id, target.oauth, target.endpoint)

    return headers


def _fits(session: McpSession, target: RoutedTarget, headers: dict[str, str] | None) -> bool:
    """A pooled session serves a call if it has the call's headers (None: any) and speaks the era
    the target's last sync found (a sync may find another than the session was opened in)."""
    return (headers is None or session.extra_headers == headers) and session.modern == is_modern(
        target.protocol_version
    )


class UpstreamPool:
    def __init__(
        self,
        http: McpHttp,
        timeout: float,
        m2m_headers: Headers,
        *,
        max_sessions: int = 10_000,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._m2m_headers = m2m_headers
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[Key, McpSession] = OrderedDict()  # least recently used first
        self._locks = KeyedLocks()
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    async def _session(self, target: RoutedTarget, user: str, headers: dict[str, str] | None) -> McpSession:
        key = (target.target_id, target.generation, user)
        session = self._sessions.get(key)
        if session is not None and _fits(session, target, headers):
            self._sessions.move_to_end(key)
            return session
        async with self._locks(key):
            session = self._sessions.get(key)
            if session is not None and _fits(session, target, headers):
                return session
            if session is not None:
                session.retire()
            if headers is None:
                headers = await self._m2m_headers(target) if target.oauth else {}
            session = McpSession(self._http, target.endpoint, timeout=self._timeout, headers=headers)
            # in the era the sync found; a target synced before eras were recorded spoke the handshake
            await session.open(target.protocol_version or LATEST_PROTOCOL_VERSION)
            self._sessions[key] = session
            self._evict()
            return session

    def _evict(self) -> None:
        """Close the least recently used idle sessions beyond ``max_sessions`` (in the background)."""
        excess = len(self._sessions) - self._max_sessions
        if excess <= 0:
            return
        idle = []
        for key, session in self._sessions.items():
            if session.in_flight == 0:
                idle.append(key)
                if len(idle) == excess:
                    break
        for key in idle:
            task = asyncio.create_task(self._sessions.pop(key).close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def call_tool(
        self,
        target: RoutedTarget,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, Any] | None,
        *,
        user: str = "",
        headers: dict[str, str] | None = None,
        options: CallOptions = NO_OPTIONS,
    ) -> ToolResult:
        """Call through the pooled session. A session the server forgot is opened again once; so is a
        client-credentials session refused with 401. A user's 401 goes back to the caller.
        ``options``: progress, the client's capabilities, an MRTR retry (``mcp_client.CallOptions``);
        cancelling the calling task cancels the call at the target."""
        if tracing.traced():
            with tracing.client_span(
                f"tools/call {target.name}", **{"gatehouse.target_id": target.target_id}
            ):
                return await self._call_tool(target, tool, arguments, meta, user, headers, options)
        return await self._call_tool(target, tool, arguments, meta, user, headers, options)

    async def _call_tool(
        self,
        target: RoutedTarget,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, Any] | None,
        user: str,
        headers: dict[str, str] | None,
        options: CallOptions,
    ) -> ToolResult:
        if target.header_maps and (found := target.header_maps.get(tool)) is not None:
            options = replace(options, header_map=found)
        session = await self._session(target, user, headers)
        try:
            return await session.call_tool(tool, arguments, meta, options)
        except (UpstreamSessionLost, UpstreamUnauthorized) as exc:
            self._sessions.pop((target.target_id, target.generation, user), None)
            if isinstance(exc, UpstreamUnauthorized) and (headers is not None or not target.oauth):
                raise
            session = await self._session(target, user, headers)
            return await session.call_tool(tool, arguments, meta, options)

    async def forget(self, target_id: str) -> None:
        """Drop every session of a target (it changed or went away); each is closed once the calls
        it carries are answered."""
        for key in [k for k in self._sessions if k[0] == target_id]:
            self._sessions.pop(key).retire()

    async def close(self) -> None:
        for key in list(self._sessions):
            await self._sessions.pop(key).close()
