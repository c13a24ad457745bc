# ruff: noqa: S101  (a benchmark harness: asserts on answers)
"""The benchmark's clients beside wrk. The tests' own async helpers (tests/admin.py's ``Admin``,
tests/rawmcp.py's MCP requests) run on one event loop in a thread (``Loop``), so the benchmark and
the suite send the same requests through the same code; here are only what the benchmark adds: the
headers wrk replays for a session, and the target events on the bus."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import harness  # tests/harness, on the path bench/run.py sets
import httpx
import rawmcp

PROTOCOL = "2025-11-25"
T = TypeVar("T")


class Loop:
    """An event loop in a thread of its own: the harness is synchronous (wrk, py-spy, /proc), the
    tests' helpers are coroutines; ``run`` waits for one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# ------------------------------------------------------------------------------------------
# MCP over plain HTTP (the load itself is wrk's)
# ------------------------------------------------------------------------------------------


def rpc_body(method: str, params: dict[str, Any] | None = None, msg_id: int = 1) -> bytes:
    """A request's bytes as wrk sends them (compact JSON)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return _compact(msg)


def modern_call(method: str, params: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A 2026-07-28 request (``params`` plus the ``_meta`` envelope) and its headers, mirrored
    ``MCP-Protocol-Version``, ``Mcp-Method`` and, for a tools/call, ``Mcp-Name``; no session."""
    body = rawmcp.modern_request(method, params, msg_id=1)
    return _compact(body), {**rawmcp.HEADERS, **rawmcp.modern_headers(body)}


def _compact(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


class Mcp:
    """MCP sessions through rawmcp on one httpx client (the extra headers, e.g. a user's
    Authorization, ride on every request); ``open`` gives the headers wrk replays."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.extra = dict(headers or {})
        self.http = httpx.AsyncClient(headers=self.extra, timeout=60, trust_env=False)

    async def open(self, url: str) -> dict[str, str]:
        """initialize + notifications/initialized; every header a later request of the session needs."""
        session = await rawmcp.open_session(self.http, url, PROTOCOL)
        return {**rawmcp.HEADERS, **self.extra, "Mcp-Session-Id": session, "MCP-Protocol-Version": PROTOCOL}

    async def rpc(
        self, url: str, session: dict[str, str], method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await rawmcp.rpc(self.http, url, session.get("Mcp-Session-Id"), method, params)

    async def count_tools(self, url: str, session: dict[str, str]) -> int:
        count, cursor = 0, None
        while True:
            answer = await self.rpc(url, session, "tools/list", {"cursor": cursor} if cursor else {})
            count += len(answer["result"]["tools"])
            cursor = answer["result"].get("nextCursor")
            if not cursor:
                return count

    async def close(self) -> None:
        await self.http.aclose()


async def wait_until(what: str, check: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    """Until the coroutine function ``check`` returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        if value := await check():
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


class Events:
    """Target events as they are published (NATS core subscription, admin user): when a target
    became READY or started waiting for consent, without polling the admin API (every GET of a
    target is a full scan of the targets collection on FerretDB, which would slow what we time)."""

    def __init__(self, loop: Loop, nats_url: str) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()
        self._loop = loop
        url = harness.nats_admin_url(nats_url) if hasattr(harness, "nats_admin_url") else nats_url

        async def subscribe() -> Any:
            import nats

            nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1)
            await nc.subscribe("gatehouse.events.target.>", cb=self._on_msg)
            await nc.subscribe("gatehouse.events.identity.>", cb=self._on_msg)
            await nc.flush()
            return nc

        try:
            self._nc = loop.run(subscribe(), timeout=15)
        except Exception as exc:  # noqa: BLE001 - said once, clearly
            raise RuntimeError(f"cannot subscribe to the target events: {exc!r}") from exc

    async def _on_msg(self, msg: Any) -> None:
        now = time.perf_counter()
        try:
            event = json.loads(msg.data)
        except ValueError:
            return
        kind = str(event.get("type", msg.subject.removeprefix("gatehouse.events.")))
        key = (kind, str(event.get("targetId") or event.get("sessionUri")))
        with self._cond:
            self._seen.setdefault(key, now)
            self._cond.notify_all()

    def wait(self, kind: str, target_id: str, timeout: float = 120.0) -> float:
        """perf_counter() time at which the first ``kind`` event (e.g. target.synchronized) arrived for
        a target (identity events: for a session URI)."""
        key = (kind, target_id)
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._seen, timeout=timeout):
                raise RuntimeError(f"no {kind} event for target {target_id} within {timeout:g}s")
            return self._seen[key]

    def close(self) -> None:
        self._loop.run(self._nc.close(), timeout=10)
