# ruff: noqa: S101  (a benchmark harness: asserts on answers)
"""The benchmark's own clients, synchronous beside wrk: MCP over plain HTTP (sessions whose headers
wrk replays), the admin API, and the target events on the bus. Request shapes come from the tests'
helpers (tests/rawmcp.py, tests/admin.py), so the benchmark and the suite send the same bodies."""

from __future__ import annotations

import json
import time
from typing import Any

import harness  # tests/harness, on the path bench/run.py sets
import httpx
import rawmcp
from admin import target_body

from gatehouse_contracts import lifecycle

PROTOCOL = "2025-11-25"
FAILED = set(lifecycle.UNSUCCESSFUL)  # where a sync ends without tools


# ------------------------------------------------------------------------------------------
# MCP over plain HTTP (the load itself is wrk's)
# ------------------------------------------------------------------------------------------


def rpc_body(method: str, params: dict[str, Any] | None = None, msg_id: int = 1) -> bytes:
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


def open_session(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """initialize + notifications/initialized; the headers every later request of the session needs."""
    base = {**rawmcp.HEADERS, **(headers or {})}
    init = _compact(rawmcp.initialize(PROTOCOL, msg_id=0))
    r = http.post(url, content=init, headers=base)
    r.raise_for_status()
    session = {**base, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": PROTOCOL}
    r = http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=session)
    assert r.status_code == 202, (r.status_code, r.text)
    return session


def rpc(http: httpx.Client, url: str, session: dict[str, str], body: bytes) -> dict[str, Any]:
    r = http.post(url, content=body, headers=session)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    return r.json()  # type: ignore[no-any-return]


def count_tools(http: httpx.Client, url: str, session: dict[str, str]) -> int:
    count, cursor = 0, None
    while True:
        answer = rpc(http, url, session, rpc_body("tools/list", {"cursor": cursor} if cursor else {}))
        count += len(answer["result"]["tools"])
        cursor = answer["result"].get("nextCursor")
        if not cursor:
            return count


def wait_until(what: str, check: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


# ------------------------------------------------------------------------------------------
# admin API
# ------------------------------------------------------------------------------------------


class Admin:
    def __init__(self, stack: harness.Stack) -> None:
        self.stack = stack
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.gw = httpx.Client(
            base_url=stack.gateway_url,
            headers=stack.admin_headers,
            timeout=60,
            trust_env=False,
            limits=limits,
        )
        self.id = httpx.Client(
            base_url=stack.identity_url, headers=stack.admin_headers, timeout=60, trust_env=False
        )

    def gateway(self, name: str, **fields: Any) -> dict[str, Any]:
        r = self.gw.post("/gateways", json={"name": name, **fields})
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    def create_target(self, gateway_id: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.gw.post(f"/gateways/{gateway_id}/targets", json=body)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    def target(self, gateway_id: str, target_id: str) -> dict[str, Any]:
        r = self.gw.get(f"/gateways/{gateway_id}/targets/{target_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def wait_status(
        self,
        gateway_id: str,
        target_id: str,
        statuses: set[str],
        *,
        every: float = 0.05,
        timeout: float = 120,
    ) -> tuple[dict[str, Any], float]:
        """Poll the target until its status is in ``statuses``; (target, monotonic time seen)."""
        deadline = time.monotonic() + timeout
        while True:
            t = self.target(gateway_id, target_id)
            seen = time.perf_counter()
            if t["status"] in statuses:
                return t, seen
            if t["status"] in FAILED:
                raise RuntimeError(f"target {target_id} failed: {t['statusReasons']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"target {target_id} stuck in {t['status']}")
            time.sleep(every)

    def close(self) -> None:
        self.gw.close()
        self.id.close()


def user_target(
    name: str, endpoint: str, provider: str, return_url: str, inline: list[dict[str, Any]] | None
) -> dict[str, Any]:
    body = target_body(name, endpoint, inline_tools=inline)
    oauth = {
        "providerName": provider,
        "scopes": ["mcp:tools"],
        "grantType": "AUTHORIZATION_CODE",
        "defaultReturnUrl": return_url,
    }
    body["credentialProviderConfigurations"] = [
        {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
    ]
    return body


class Events:
    """Target events as they are published (NATS core subscription, admin user): when a target
    became READY or started waiting for consent, without polling the admin API (every GET of a
    target is a full scan of the targets collection on FerretDB, which would slow what we time)."""

    def __init__(self, nats_url: str) -> None:
        import asyncio
        import threading

        self._seen: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        url = harness.nats_admin_url(nats_url) if hasattr(harness, "nats_admin_url") else nats_url

        async def main() -> None:
            import nats

            try:
                self._nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1)
                await self._nc.subscribe("gatehouse.events.target.>", cb=self._on_msg)
                await self._nc.subscribe("gatehouse.events.identity.>", cb=self._on_msg)
                await self._nc.flush()
            except BaseException as exc:  # noqa: BLE001 - reported by the constructor
                self._error = exc
            self._ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-events", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        self._ready.wait(15)
        if self._error is not None or not self._ready.is_set():
            raise RuntimeError(f"cannot subscribe to the target events: {self._error!r}")

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
        import asyncio

        if hasattr(self, "_nc"):
            asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
