"""Proves the test harness works: NATS JetStream, the MongoDB-compatible server, the upstream MCP
servers (official Python SDK server in JSON and SSE mode, server-everything, not-MCP servers),
and the process/stack mechanics (with stand-in services; the real stack fixture is not used)."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import anyio
import harness
import httpx
import pytest
from rawmcp import HEADERS, initialize

CORE_TOOLS = {"echo", "add", "slow", "fail", "whoami"}


# ------------------------------------------------------------------------------------------
# NATS / MongoDB
# ------------------------------------------------------------------------------------------


async def test_nats_jetstream(nats_url: str) -> None:
    import nats

    nc = await nats.connect(harness.nats_admin_url(nats_url), connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.account_info()
        assert info.limits is not None
        name = f"SMOKE_{uuid.uuid4().hex[:8].upper()}"
        await js.add_stream(name=name, subjects=[f"smoke.{name}.>"])
        ack = await js.publish(f"smoke.{name}.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        dup = await js.publish(f"smoke.{name}.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        assert ack.seq == 1 and dup.duplicate
        await js.delete_stream(name)
    finally:
        await nc.close()


def test_mongo_ping_insert_find(mongo_url: str, mongo_server: harness.Proc | harness.External) -> None:
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    db_name = f"smoke_{uuid.uuid4().hex[:8]}"
    try:
        assert client.admin.command("ping")["ok"] == 1
        coll = client[db_name]["things"]
        coll.insert_one({"_id": "a", "n": 1, "tags": ["x"]})
        coll.update_one({"_id": "a", "n": 1}, {"$set": {"n": 2}})  # compare-and-set style
        assert coll.find_one({"_id": "a"}) == {"_id": "a", "n": 2, "tags": ["x"]}
        assert coll.count_documents({"n": {"$gte": 2}}) == 1
    finally:
        client.drop_database(db_name)
        client.close()
    if isinstance(mongo_server, harness.Proc):
        assert mongo_server.alive


# ------------------------------------------------------------------------------------------
# upstream MCP servers through the official SDK client (v2 API)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("server", ["sdk_server", "sdk_server_json"])
async def test_sdk_server_tools(server: str, mode: str, request: pytest.FixtureRequest) -> None:
    proc: harness.Proc = request.getfixturevalue(server)
    with anyio.fail_after(30):
        async with harness.mcp_client(proc.url, mode=mode) as client:
            # "auto" probes server/discover; the v2 SDK server answers it and the client adopts
            # the stateless 2026-07-28 era. "legacy" does the 2025-11-25 initialize handshake.
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            tools = (await client.list_tools()).tools
            assert CORE_TOOLS <= {t.name for t in tools}
            add = await client.call_tool("add", {"a": 2, "b": 3})
            assert not add.is_error and add.content[0].text == "5"
            echo = await client.call_tool("echo", {"text": "hi"})
            assert echo.content[0].text == "hi"
            fail = await client.call_tool("fail", {})
            assert fail.is_error
            slow = await client.call_tool("slow", {"seconds": 0.1})
            assert slow.content[0].text == "done"


@pytest.mark.parametrize("json_mode", [False, True])
def test_sdk_server_wire(json_mode: bool, request: pytest.FixtureRequest) -> None:
    """Raw 2025-11-25 Streamable HTTP: session id on initialize, JSON vs SSE bodies."""
    proc: harness.Proc = request.getfixturevalue("sdk_server_json" if json_mode else "sdk_server")
    init = initialize()
    with httpx.Client(timeout=10) as http:
        r = http.post(proc.url, json=init, headers=HEADERS)
        assert r.status_code == 200
        session = r.headers["mcp-session-id"]
        ctype = r.headers["content-type"]
        assert ctype.startswith("application/json" if json_mode else "text/event-stream")
        h2 = {**HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        r = http.post(proc.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h2)
        assert r.status_code == 202
        r = http.post(proc.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=h2)
        assert r.status_code == 200
        if json_mode:
            body = r.json()
        else:
            data = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
            body = json.loads([d for d in data if d][-1])
        assert CORE_TOOLS <= {t["name"] for t in body["result"]["tools"]}
        # no session → 400
        r = http.post(proc.url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=HEADERS)
        assert r.status_code == 400


async def test_sdk_server_extra_tools_paged(upstreams) -> None:
    proc = upstreams.sdk(json_response=True, extra_tools=1200, page_size=500)
    with anyio.fail_after(30):
        async with harness.mcp_client(proc.url, mode="legacy") as client:
            names: list[str] = []
            cursor = None
            pages = 0
            while True:
                page = await client.list_tools(cursor=cursor)
                pages += 1
                names += [t.name for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    break
            assert pages == 3 and len(names) == 1205 and len(set(names)) == 1205
            assert "tool_0000" in names and "tool_1199" in names
            r = await client.call_tool("tool_0042", {"x": 7})
            assert r.content[0].text == "tool_0042:7"


async def test_sdk_server_tricky_schema(upstreams) -> None:
    proc = upstreams.sdk(tricky_schema=True, extra_tools=2)
    with anyio.fail_after(30):
        async with harness.mcp_client(proc.url, mode="legacy") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == CORE_TOOLS | {"tricky.schema", "tool_0000", "tool_0001"}
            schema = tools["tricky.schema"].input_schema
            assert {"$schema", "$defs"} <= set(schema) and "a.b" in schema["properties"]
            r = await client.call_tool("tricky.schema", {"a.b": "x", "point": {"x": 1, "y": 2}})
            assert json.loads(r.content[0].text) == {"a.b": "x", "point": {"x": 1, "y": 2}}


async def test_sdk_server_bearer(upstreams) -> None:
    import hashlib

    from mcp import MCPError

    proc = upstreams.sdk(bearer_tokens=["tok-a"])
    with anyio.fail_after(30):
        # a failed connect surfaces as (nested) ExceptionGroups around the MCPError
        with pytest.raises(BaseExceptionGroup) as exc:
            async with harness.mcp_client(proc.url, mode="legacy"):
                pass
        assert exc.group_contains(MCPError, depth=None)
        async with harness.mcp_client(
            proc.url, mode="legacy", headers={"Authorization": "Bearer tok-a"}
        ) as c:
            r = await c.call_tool("whoami", {})
            fp = json.loads(r.content[0].text)["authorization"]
            assert fp == "sha256:" + hashlib.sha256(b"Bearer tok-a").hexdigest()
    assert "tok-a" not in proc.log_path.read_text()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_everything_server_tools(everything_server: harness.Proc, mode: str) -> None:
    assert everything_server.url.endswith("/mcp")
    with anyio.fail_after(30):
        async with harness.mcp_client(everything_server.url, mode=mode) as client:
            # server-everything (TS SDK 1.x) answers the discover probe with HTTP 400
            # "Server not initialized" -> the v2 client falls back to initialize.
            assert client.protocol_version == "2025-11-25"
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"echo", "get-sum"} <= names
            r = await client.call_tool("echo", {"message": "hi"})
            assert r.content[0].text == "Echo: hi"


def test_not_mcp_servers(not_mcp_server: harness.Proc, hanging_server: harness.Proc) -> None:
    with httpx.Client(timeout=1.0) as http:
        r = http.post(not_mcp_server.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        with pytest.raises(httpx.ReadTimeout):
            http.post(hanging_server.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize"})


# ------------------------------------------------------------------------------------------
# process mechanics
# ------------------------------------------------------------------------------------------


def test_proc_failure_reports_log_tail() -> None:
    code = "import sys; print('boom: missing SETTING_X', flush=True); sys.exit(3)"
    proc = harness.Proc("dies", [sys.executable, "-c", code], port=harness.free_port()).start()
    with pytest.raises(harness.StartError) as exc:
        proc.wait_port(timeout=10)
    msg = str(exc.value)
    assert "exited with code 3" in msg and "boom: missing SETTING_X" in msg and str(proc.log_path) in msg


def test_proc_timeout_reports_log_tail() -> None:
    code = "import time; print('starting slowly', flush=True); time.sleep(60)"
    proc = harness.Proc("slowpoke", [sys.executable, "-c", code], port=harness.free_port()).start()
    try:
        with pytest.raises(harness.StartError, match="(?s)timed out.*starting slowly"):
            proc.wait_port(timeout=1.5)
    finally:
        proc.stop()
    assert not proc.alive


def test_proc_kill_and_restart(upstreams) -> None:
    proc = upstreams.not_mcp()
    pid = proc.pid
    proc.restart(kill9=True)
    assert proc.alive and proc.pid != pid
    assert httpx.post(proc.url, content=b"x", timeout=5).status_code == 200
    assert proc.kill(signal.SIGTERM) is not None and not proc.alive
    assert "start #2" in proc.log_path.read_text()


FAKE_SERVICE = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    SVC = {svc!r}
    HOST_VAR, PORT_VAR = {host_var!r}, {port_var!r}
    required = ["NATS_URL", "MONGODB_URL", "LOG_LEVEL", HOST_VAR, PORT_VAR] + {required!r}
    missing = [v for v in required if not os.environ.get(v)]
    if missing:
        print(SVC, "missing env", missing, flush=True)
        sys.exit(2)
    PREFIXES = ("GATEWAY_", "IDENTITY_", "SYNC_", "GATEHOUSE_", "NATS_", "MONGODB_")
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            env = {{k: v for k, v in os.environ.items() if k.startswith(PREFIXES)}}
            body = json.dumps({{"svc": SVC, "pid": os.getpid(), "env": env}}).encode()
            self.send_response(200 if self.path in ("/healthz", "/readyz", "/env") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    print(SVC, "listening", flush=True)
    HTTPServer((os.environ[HOST_VAR], int(os.environ[PORT_VAR])), H).serve_forever()
    """
)


def test_stack_mechanics_with_stand_in_services(
    tmp_path: Path, nats_url: str, mongo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_stack / replicas / restarts against stand-in service modules (the real services are
    tested through the `stack` fixture; this only checks the harness's side of the configuration)."""
    required = {
        "gateway": [
            "GATEHOUSE_DB",
            "GATEHOUSE_ADMIN_TOKEN",
            "GATEHOUSE_SESSION_SECRET",
            "GATEWAY_PUBLIC_URL",
        ],
        "identity": ["IDENTITY_DB", "GATEHOUSE_ADMIN_TOKEN", "IDENTITY_PUBLIC_URL"],
        "sync-worker": ["GATEHOUSE_DB"],
        "audit": ["NATS_USER"],
        "console": [],
    }
    for name, spec in harness.SERVICES.items():
        pkg = tmp_path / spec.module
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "__main__.py").write_text(
            FAKE_SERVICE.format(
                svc=name, host_var=spec.host_var, port_var=spec.port_var, required=required[name]
            )
        )
    pythonpath = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    monkeypatch.setenv("SYNC_MAX_TOOLS", "1")  # a developer's shell setting must not leak in
    stack = harness.start_stack(nats_url, mongo_url, run_id="smoke", PYTHONPATH=pythonpath)
    try:

        def env_of(url: str) -> dict:
            return httpx.get(url + "/env", timeout=5).json()

        gw, ident = env_of(stack.gateway_url), env_of(stack.identity_url)
        assert gw["svc"] == "gateway" and ident["svc"] == "identity"
        assert gw["env"]["GATEWAY_PORT"] == str(stack.gateway.port)
        assert gw["env"]["GATEWAY_PUBLIC_URL"] == stack.gateway_url
        assert ident["env"]["IDENTITY_PUBLIC_URL"] == stack.identity_url
        assert gw["env"]["NATS_URL"] == nats_url and gw["env"]["MONGODB_URL"] == mongo_url
        assert gw["env"]["GATEHOUSE_DB"] == stack.gatehouse_db == "gatehouse_test_smoke"
        assert ident["env"]["IDENTITY_DB"] == stack.identity_db == "gatehouse_identity_test_smoke"
        assert stack.admin_headers == {"Authorization": f"Bearer {harness.ADMIN_TOKEN}"}
        assert "SYNC_MAX_TOOLS" not in env_of(stack.sync_worker.url)["env"]

        replica = stack.start_gateway_replica()
        renv = env_of(replica.url)
        assert replica.port != stack.gateway.port
        assert renv["env"]["GATEWAY_PUBLIC_URL"] == stack.gateway_url  # behind the primary's address
        assert renv["env"]["GATEHOUSE_SESSION_SECRET"] == gw["env"]["GATEHOUSE_SESSION_SECRET"]

        sw_port, sw_pid = stack.sync_worker.port, stack.sync_worker.pid
        stack.restart_sync_worker(kill9=True)
        assert stack.sync_worker.port == sw_port and stack.sync_worker.pid != sw_pid
        assert httpx.get(stack.sync_worker.url + "/healthz", timeout=5).status_code == 200
        procs = stack.procs
    finally:
        stack.stop()
    assert not any(p.alive for p in procs)
    assert all(p.log_path in harness.log_files("service") for p in procs)


def test_every_log_file_is_recorded(sdk_server: harness.Proc, nats_server: harness.Proc) -> None:
    files = harness.log_files()
    assert sdk_server.log_path in files and nats_server.log_path in files
    assert sdk_server.log_path in harness.log_files("upstream")
    assert nats_server.log_path in harness.log_files("infra")
    assert all(f.parent == harness.log_dir() for f in files)
