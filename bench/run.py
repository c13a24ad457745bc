# ruff: noqa: S101, S603, S607  (a benchmark harness: asserts on answers, starts wrk and py-spy)
"""`make bench`: Gatehouse's benchmarks against the real stack, loaded from a separate process.

Starts NATS (JetStream), MongoDB/FerretDB, identity, sync-worker and gateway with production
settings (tests/harness, the services' own defaults instead of the test suite's short timers),
the test OAuth server (oidc-provider), a minimal fast upstream MCP server (bench/upstream.py) and
the `floor` server (bench/floor.py). Load comes from wrk (C, its own process, bench/mcp.lua for
the JSON-RPC POST bodies and MCP headers); its own ceiling is measured against a trivial Node.js
HTTP server first.

Cases (each a few seconds of load, measured side by side in one run):
  floor_<n>t            FastAPI + uvicorn (the gateway's settings) answering the precomputed bytes
                        of the gateway's tools/list answer for <n> targets
  tools_list_<n>t       tools/list through the gateway, n = 1, 100, 1000 targets x 10 tools
                        (1 synced target + inline-schema targets); ratio = rps / floor rps
  tools_call_direct_cC  tools/call straight to the fast upstream, concurrency C = 1, 32
  tools_call_cC         the same call through the gateway; ratio = rps / direct rps
  tools_call_open_cC    tools/call on an open target of a CUSTOM_JWT gateway
  tools_call_3lo_cC     tools/call on an authorization-code target, vault hit (consented once);
                        ratio = cost vs open (p50 latency at c1, throughput at c32), lower is better
  sync_1000             target creation -> READY for a 1,000-tool target (3 runs: p50 = median,
                        p99 = max); ratio = p50 / 2000 ms budget
  ready_after_consent   CompleteResourceTokenAuth -> READY for an implicit-sync target (3 runs),
                        with the whole catalog stored; ratio = p50 / 100 ms budget
  ready_after_consent_small  the same before the catalogs are built (a few targets stored): on
                        FerretDB the status compare-and-set scans the targets collection
  gateway_rss           the gateway's resident memory with the whole catalog cached (>= 10,000
                        tools); ratio = RSS / RSS of the empty gateway; extra field rss_mib

Output: a table, then one line per case
  bench <case> p50_ms=<x> p99_ms=<y> rps=<z> ratio=<r> [extra key=value ...]
("nan" where a field does not apply), the targets of issue 6 with PASS/MISS, and
bench/out/results.json. With --profile, py-spy samples the gateway (and identity for 3lo) under
tools_list and tools_call load: flame graphs (SVG), collapsed stacks and top-function tables in
bench/out/.

Usage: python bench/run.py [--duration 3] [--profile] [--quick] [--only call,consent]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402  (tests/harness, reused as is)
import httpx  # noqa: E402
import rawmcp  # noqa: E402  (tests/rawmcp.py)
import upstream as fast_upstream  # noqa: E402  (bench/upstream.py: tool definitions)
from admin import Admin, target_body, user_target_body  # noqa: E402  (tests/admin.py)
from clients import PROTOCOL, Events, Loop, Mcp, modern_call, rpc_body, wait_until  # noqa: E402
from measure import T0, Run, Wrk, machine, merge, rss_kib, say  # noqa: E402
from profiling import print_profile, pyspy_binary, start_pyspy, summarize_profile  # noqa: E402

CATALOG_SIZES = (1, 100, 1000)  # targets x 10 tools
TOOLS_PER_TARGET = 10
SYNC_TOOLS = 1000
REPEATS = 3
SDK_TOOLS = 102  # the SDK target's catalog (tests/servers/sdk_server.py: 5 tools + generated ones)
# the processes `make dev` runs (scripts/dev.sh), whose CPU per call the stack cases add up
STACK = ("gateway", "identity", "sync-worker", "audit", "nats", "mongo")
LABELS = {
    "gateway": "gw",
    "identity": "id",
    "sync-worker": "sync",
    "audit": "audit",
    "nats": "nats",
    "mongo": "db",
}

# The services' production defaults instead of the test suite's short timers (an empty value
# makes a service use its own default). Above all: the periodic catalog reload every 30 s, not 2 s.
PRODUCTION_ENV = {
    "SYNC_MAX_ATTEMPTS": "",
    "SYNC_RETRY_BASE_SECONDS": "",
    "SYNC_TIMEOUT_SECONDS": "",
    "SYNC_ACK_WAIT_SECONDS": "",
    "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "",
    "GATEWAY_CATALOG_REFRESH_SECONDS": "",
    "SYNC_PENDING_SWEEP_SECONDS": "",
    "LOG_LEVEL": "INFO",
    "GATEWAY_WORKERS": os.environ.get("BENCH_GATEWAY_WORKERS", ""),
}

GROUPS = {  # --only: case group -> Bench methods, in run order
    "list": ["tools_list"],
    "call": ["tools_call"],
    "eras": ["eras"],
    "3lo": ["user_auth_setup", "tools_call_3lo"],
    "sync": ["sync_1000"],
    "consent": ["user_auth_setup", "ready_after_consent"],
    "memory": ["memory", "db_probe"],
    "stack": ["stack_setup", "stack_calls"],
    "observe": ["observe"],
}


def neutral_service_commands() -> dict[str, str]:
    """Start the services as ``python -m bench.service`` (bench/service.py says why); the env to add."""
    modules = ",".join(f"{spec.port_var}={spec.module}" for spec in harness.SERVICES.values())
    for name, spec in list(harness.SERVICES.items()):
        harness.SERVICES[name] = dataclasses.replace(spec, module="bench.service")
    return {"BENCH_SERVICE_MODULES": modules}


# ------------------------------------------------------------------------------------------
# processes the benchmark starts besides the stack
# ------------------------------------------------------------------------------------------


def start_python(name: str, script: Path, *args: str, health: str = "/healthz") -> harness.Proc:
    port = harness.free_port()
    url = f"http://{harness.LOCALHOST}:{port}"
    proc = harness.Proc(
        name,
        [sys.executable, str(script), "--port", str(port), *args],
        cwd=REPO,
        port=port,
        url=url,
        health_url=url + health,
        role="upstream",
    )
    proc.start()
    proc.wait_ready()
    return proc


NODE_TRIVIAL = (
    "require('http').createServer((q,s)=>{q.resume();s.setHeader('content-type','application/json');"
    "s.end('{}')}).listen(+process.env.PORT,'127.0.0.1')"
)


def start_trivial() -> tuple[harness.Proc | None, str]:
    """A trivial HTTP endpoint for wrk's ceiling: Node's http module (one event loop, in C++)."""
    node = shutil.which("node")
    if node is None:
        return None, ""
    port = harness.free_port()
    proc = harness.Proc(
        "trivial-node", [node, "-e", NODE_TRIVIAL], {"PORT": str(port)}, port=port, role="misc"
    )
    proc.start()
    proc.wait_port()
    return proc, f"http://{harness.LOCALHOST}:{port}/"


# ------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    p50_ms: float
    p99_ms: float
    rps: float
    ratio: float
    conns: int | None = None
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""
    errors: int = 0
    cpu: str = ""


def measured(name: str, run: Run, ratio: float, cpu: dict[str, str], **fields: Any) -> Case:
    """A case from a wrk run; ``cpu`` maps each column label to the watched process it shows."""
    cores = " ".join(f"{label} {run.cpu.get(proc, 0):.2f}" for label, proc in cpu.items())
    return Case(
        name, run.p50_ms, run.p99_ms, run.rps, ratio, run.conns, errors=run.errors, cpu=cores, **fields
    )


def fmt(x: float, digits: int = 2) -> str:
    return "nan" if x != x else f"{x:.{digits}f}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
        harness.set_log_dir(self.tmp / "logs")
        self.cases: list[Case] = []
        self.info: dict[str, Any] = {"machine": machine()}
        self.profiles: dict[str, Any] = {}
        self.http = httpx.Client(timeout=60, trust_env=False)

    # -- set-up -------------------------------------------------------------------------------

    def start(self) -> None:
        say("starting NATS, MongoDB-compatible server, identity, sync-worker, gateway (production settings)")
        self.nats = harness.start_nats(self.tmp / "nats")
        self.mongo = harness.start_mongo(self.tmp / "mongo")
        self.stack = harness.start_stack(
            self.nats.url or "",
            self.mongo.url or "",
            run_id=f"bench_{uuid.uuid4().hex[:6]}",
            **PRODUCTION_ENV,
            **neutral_service_commands(),
        )
        say(f"  mongo: {getattr(self.mongo, 'kind', '?')}; logs in {harness.log_dir()}")
        # the audit subscriber too, as `make dev` runs it: it stores every event the calls publish
        self.audit = harness.start_service(
            "audit", {**self.stack.env, "AUDIT_DB": f"{self.stack.gatehouse_db}_audit"}
        )
        self.upstream = start_python("bench-upstream", BENCH / "upstream.py")
        self.oidc = harness.start_oidc_provider()
        self.catcher = harness.start_return_catcher()
        self.loop = Loop()
        self.admin = Admin(self.stack.gateway_url, self.stack.admin_headers)
        self.identity = httpx.Client(
            base_url=self.stack.identity_url, headers=self.stack.admin_headers, timeout=60, trust_env=False
        )
        self.mcp = Mcp()
        self.events = Events(self.loop, self.nats.url or "")
        self.gw_pid = self.stack.gateway.pid
        time.sleep(1.0)
        self.info["rss_empty_kib"] = rss_kib(self.gw_pid)
        self.watch: dict[str, int | None] = {
            "gateway": self.stack.gateway.pid,
            "identity": self.stack.identity.pid,
            "sync-worker": self.stack.sync_worker.pid,
            "audit": self.audit.pid,
            "nats": self.nats.pid,
            "mongo": getattr(self.mongo, "pid", None),
            "upstream": self.upstream.pid,
        }
        self.wrk = Wrk(self.tmp, self.args.duration, self.watch)

    def ceiling(self) -> None:
        say("load generator ceiling: wrk against a trivial endpoint")
        proc, url = start_trivial()
        if proc is None:  # no Node.js: NATS's monitoring endpoint (Go) is the trivial server
            url = self.nats.health_url or ""
        self.wrk.watch = {**self.watch, "trivial": proc.pid if proc else self.nats.pid}
        self.wrk.run(
            "ceiling", url, b"{}", {"Content-Type": "application/json"}, 32, duration=1, record=False
        )
        run = self.wrk.run("wrk_ceiling", url, b"{}", {"Content-Type": "application/json"}, 32)
        self.wrk.watch = self.watch
        if proc:
            proc.stop()
        self.ceiling_rps = run.rps
        self.cases.append(
            Case(
                "wrk_ceiling",
                run.p50_ms,
                run.p99_ms,
                run.rps,
                float("nan"),
                32,
                note=f"{'node http' if proc else 'nats /healthz'}; wrk {run.wrk_cpu:.2f} cores",
                cpu=f"server {run.cpu.get('trivial', 0):.2f}",
            )
        )

    def build_catalogs(self) -> None:
        """Gateways with 1, 100 and 1,000 targets x 10 tools: one synced target each, the rest with an
        inline schema. The 100-target catalog goes through the admin API (its create latencies are
        reported); for the 1,000-target one, 1 inline target is created through the API and the
        other 998 are copies of its stored document (new id, name, stamp), then the gateway is
        restarted and loads the catalog at start-up (timed). Why copies: each admin create costs a
        few full scans of the targets collection in FerretDB (see BENCHMARKS.md), so 1,000 creates
        through the API take many minutes on this machine."""
        up = self.upstream.url
        say(
            f"catalogs: gateways with {', '.join(map(str, CATALOG_SIZES))} targets x {TOOLS_PER_TARGET} tools"
        )
        self.gateways: dict[int, dict[str, Any]] = {}
        inline = fast_upstream.tools(TOOLS_PER_TARGET)
        started = time.monotonic()
        for n in CATALOG_SIZES:
            gw = self.loop.run(self.admin.create_gateway(f"bench-{n}t-{secrets.token_hex(3)}"))
            self.gateways[n] = gw
            synced = self.loop.run(
                self.admin.create_target(gw["gatewayId"], target_body("synced", f"{up}/mcp"))
            )
            self.events.wait("target.synchronized", synced["targetId"])
        say(
            f"  synced targets READY ({time.monotonic() - started:.1f}s); "
            "inline-schema targets via the admin API"
        )
        api_jobs = [
            (self.gateways[n]["gatewayId"], target_body(f"t{i:04d}", f"{up}/mcp", inline_tools=inline))
            for n in CATALOG_SIZES
            if n <= 100
            for i in range(1, n)
        ]
        big = CATALOG_SIZES[-1]
        template = self.loop.run(
            self.admin.create_target(
                self.gateways[big]["gatewayId"], target_body("t0001", f"{up}/mcp", inline_tools=inline)
            )
        )
        started = time.monotonic()
        lat: list[float] = []

        at_once = asyncio.Semaphore(4)

        async def create(job: tuple[str, dict[str, Any]]) -> None:
            async with at_once:
                t = time.perf_counter()
                await self.admin.create_target(*job)
                lat.append(time.perf_counter() - t)

        async def create_all() -> None:
            await asyncio.gather(*map(create, api_jobs))

        self.loop.run(create_all())
        took = time.monotonic() - started
        lat.sort()
        self.info["catalog_build_api"] = {
            "targets": len(api_jobs),
            "seconds": round(took, 1),
            "create_p50_ms": round(1000 * lat[len(lat) // 2], 1),
            "create_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 1),
        }
        say(
            f"  {len(api_jobs)} targets created through the API in {took:.1f}s (4 at a time; create p50 "
            f"{1000 * lat[len(lat) // 2]:.0f} ms, p99 {1000 * lat[int(len(lat) * 0.99)]:.0f} ms)"
        )
        import pymongo  # the harness's own test dependency

        client: Any = pymongo.MongoClient(self.stack.mongo_url)
        try:
            targets = client[self.stack.gatehouse_db]["targets"]
            doc = targets.find_one({"_id": template["targetId"]})
            assert doc is not None
            copies = []
            for i in range(2, big):
                copy = dict(doc)
                copy.update(_id=f"C{i:09d}", name=f"t{i:04d}", stamp=uuid.uuid4().hex)
                copies.append(copy)
            for k in range(0, len(copies), 100):
                targets.insert_many(copies[k : k + 100])
        finally:
            client.close()
        say(f"  {len(copies)} copies of an inline target stored; restarting the gateway to load the catalog")
        t = time.perf_counter()
        self.stack.gateway.restart()
        self.info["gateway_start_s"] = round(time.perf_counter() - t, 2)
        self.gw_pid = self.watch["gateway"] = self.stack.gateway.pid
        say(f"  gateway restarted with the whole catalog in {self.info['gateway_start_s']:.1f}s")
        self.sessions: dict[int, dict[str, str]] = {}
        for n, gw in self.gateways.items():
            self.sessions[n] = self.loop.run(self.mcp.open(gw["gatewayUrl"]))
            want = n * TOOLS_PER_TARGET

            async def served(gw: dict[str, Any] = gw, n: int = n, want: int = want) -> bool:
                return await self.mcp.count_tools(gw["gatewayUrl"], self.sessions[n]) >= want

            self.loop.run(wait_until(f"{want} tools in gateway {gw['gatewayId']}", served))
        self.info["cached_tools"] = sum(n * TOOLS_PER_TARGET for n in CATALOG_SIZES)
        say(f"  every catalog served ({self.info['cached_tools']} tools)")

    def tools_list(self) -> None:
        floor_dir = self.tmp / "floor"
        floor_dir.mkdir()
        body = rpc_body("tools/list", {})
        for n, gw in self.gateways.items():
            r = self.http.post(gw["gatewayUrl"], content=body, headers=self.sessions[n])
            (floor_dir / f"t{n}.json").write_bytes(r.content)
            self.info.setdefault("tools_list_bytes", {})[n] = len(r.content)
        self.floor = start_python("bench-floor", BENCH / "floor.py", "--dir", str(floor_dir))
        self.watch["floor"] = self.floor.pid
        say("tools_list vs floor (same bytes, same framework and uvicorn settings)")
        for conns in (1, 32) if not self.args.quick else (32,):
            for n, gw in self.gateways.items():
                floor_url = f"{self.floor.url}/floor/t{n}"
                floor_headers = {**self.sessions[n]}
                self.wrk.run("warmup", floor_url, body, floor_headers, conns, duration=1, record=False)
                self.wrk.run(
                    "warmup", gw["gatewayUrl"], body, self.sessions[n], conns, duration=1, record=False
                )
                f, g = self.wrk.pair(
                    (f"floor_{n}t", floor_url, body, floor_headers),
                    (f"tools_list_{n}t", gw["gatewayUrl"], body, self.sessions[n]),
                    conns,
                )
                sfx = "" if conns == 32 else "_c1"
                size = f"{f.response_bytes / 1024:.0f} KiB"
                self.cases.append(measured(f"floor_{n}t{sfx}", f, 1.0, {"floor": "floor"}, note=size))
                self.cases.append(
                    measured(
                        f"tools_list_{n}t{sfx}",
                        g,
                        g.rps / f.rps,
                        {"gw": "gateway"},
                        note=f"{n * TOOLS_PER_TARGET} tools, {size}",
                    )
                )
        self.info["rss_catalog_kib"] = rss_kib(self.gw_pid)
        self.floor.stop()
        self.watch.pop("floor", None)

    def tools_call(self) -> None:
        say("tools_call through the gateway vs straight to the fast upstream")
        gw = self.gateways[CATALOG_SIZES[0]]
        session = self.sessions[CATALOG_SIZES[0]]
        direct_url = f"{self.upstream.url}/mcp"
        direct = self.loop.run(self.mcp.open(direct_url))
        call = {"name": "synced___echo", "arguments": {"text": "hello"}}
        via = rpc_body("tools/call", call)
        straight = rpc_body("tools/call", {"name": "echo", "arguments": {"text": "hello"}})
        answer = self.loop.run(self.mcp.rpc(gw["gatewayUrl"], session, "tools/call", call))
        assert answer.get("result", {}).get("content", [{}])[0].get("text") == "hello", answer
        self.call_args = (gw["gatewayUrl"], via, session)
        for conns in (1, 32):
            self.wrk.run("warmup", direct_url, straight, direct, conns, duration=1, record=False, check=True)
            self.wrk.run(
                "warmup", gw["gatewayUrl"], via, session, conns, duration=1, record=False, check=True
            )
            d, g = self.wrk.pair(
                (f"tools_call_direct_c{conns}", direct_url, straight, direct),
                (f"tools_call_c{conns}", gw["gatewayUrl"], via, session),
                conns,
                check=True,
            )
            self.cases.append(measured(f"tools_call_direct_c{conns}", d, 1.0, {"up": "upstream"}))
            self.cases.append(
                measured(
                    f"tools_call_c{conns}",
                    g,
                    g.rps / d.rps,
                    {"gw": "gateway", "up": "upstream", "nats": "nats", "audit": "audit"},
                    extra={"added_p50_ms": g.p50_ms - d.p50_ms, "added_p99_ms": g.p99_ms - d.p99_ms},
                    note=f"+{g.p50_ms - d.p50_ms:.2f} ms p50, +{g.p99_ms - d.p99_ms:.2f} ms p99",
                )
            )

    # -- the whole stack -----------------------------------------------------------------------

    def stack_setup(self) -> None:
        """A target built on the official SDK (MCPServer, stateless, JSON answers, 102 tools)."""
        say(f"whole stack: an SDK target (MCPServer, stateless JSON answers, {SDK_TOOLS} tools)")
        self.sdk = harness.start_sdk_server(json_response=True, stateless=True, extra_tools=SDK_TOOLS - 5)
        self.watch["sdk"] = self.sdk.pid
        self.sdk_gw = self.loop.run(self.admin.create_gateway(f"bench-sdk-{secrets.token_hex(3)}"))
        url = self.sdk_gw["gatewayUrl"]
        created = self.loop.run(
            self.admin.create_target(self.sdk_gw["gatewayId"], target_body("sdk", self.sdk.url))
        )
        self.events.wait("target.synchronized", created["targetId"])
        self.sdk_session = self.loop.run(self.mcp.open(url))

        async def served() -> bool:
            return await self.mcp.count_tools(url, self.sdk_session) >= SDK_TOOLS

        self.loop.run(wait_until(f"{SDK_TOOLS} SDK tools served", served))
        say("  SDK target READY and served")

    def stack_case(self, name: str, run: Run, ratio: float, note: str = "", **extra: float) -> None:
        """A case through the gateway with the CPU each process of the stack spent per call (load
        and drain) and the drain."""
        per_call = {LABELS[p]: run.cpu_ms.get(p, 0.0) for p in STACK}
        stack = sum(per_call.values())
        gw = per_call["gw"] or float("nan")
        extra |= {f"cpu_ms_{k}": v for k, v in per_call.items()}
        extra |= {"stack_cpu_ms": stack, "stack_vs_gw": stack / gw, "drain_s": run.drain_s}
        shares = " ".join(f"{k} {v:.2f}" for k, v in per_call.items())
        note += f"cpu ms/call: {shares} = stack {stack:.2f} ({stack / gw:.1f}x gw); drain {run.drain_s:.1f}s"
        self.cases.append(measured(name, run, ratio, {"gw": "gateway"}, extra=extra, note=note))

    def stack_calls(self) -> None:
        """tools/call on the SDK target straight and through Gatehouse (bursts, A B B A, the stack
        drained after each run), the trivial upstream through the stack, and a sustained run."""
        burst, sustained = self.args.burst, self.args.sustained
        args = {"text": "hello"}
        via = rpc_body("tools/call", {"name": "sdk___echo", "arguments": args})
        straight = rpc_body("tools/call", {"name": "echo", "arguments": args})
        direct = {**rawmcp.HEADERS, "MCP-Protocol-Version": PROTOCOL}  # a stateless server: no session
        url = self.sdk_gw["gatewayUrl"]
        self.sdk_call_args = (url, via, self.sdk_session)
        r = self.http.post(self.sdk.url, content=straight, headers=direct)
        assert r.status_code == 200 and '"hello"' in r.text, r.text
        say(f"stack: tools/call on the SDK target, direct vs through Gatehouse ({burst:g}s bursts, drained)")
        for conns in (1, 32):
            self.wrk.run(
                "warmup", self.sdk.url, straight, direct, conns, duration=1, record=False, check=True
            )
            self.wrk.run("warmup", url, via, self.sdk_session, conns, duration=1, record=False, check=True)
            self.wrk.idle(STACK)
            d, g = self.wrk.pair(
                (f"sdk_call_direct_c{conns}", self.sdk.url, straight, direct),
                (f"sdk_call_c{conns}", url, via, self.sdk_session),
                conns,
                check=True,
                duration=burst,
                drain=STACK,
            )
            self.cases.append(
                measured(
                    f"sdk_call_direct_c{conns}",
                    d,
                    1.0,
                    {"sdk": "sdk"},
                    note=f"sdk {d.cpu_ms['sdk']:.2f} ms/call",
                )
            )
            added = g.p50_ms - d.p50_ms
            self.stack_case(
                f"sdk_call_c{conns}", g, g.rps / d.rps, f"+{added:.2f} ms p50; ", added_p50_ms=added
            )
        small = CATALOG_SIZES[0]
        echo = rpc_body("tools/call", {"name": "synced___echo", "arguments": args})
        trivial = (self.gateways[small]["gatewayUrl"], echo, self.sessions[small])
        for conns in (1, 32):
            self.wrk.run("warmup", *trivial, conns, duration=1, record=False, check=True)
            self.wrk.idle(STACK)
            name = f"stack_call_trivial_c{conns}"
            run = self.wrk.run(name, *trivial, conns, duration=burst, check=True, drain=STACK, record=False)
            self.wrk.keep(run)
            self.stack_case(name, run, float("nan"), "fast upstream; ")
        if sustained:
            say(f"stack: a sustained run ({sustained:g}s) on the SDK target through Gatehouse")
            run = self.wrk.run(
                "sdk_call_sustained_c32",
                url,
                via,
                self.sdk_session,
                32,
                duration=sustained,
                check=True,
                drain=STACK,
                record=False,
            )
            self.wrk.keep(run)
            self.stack_case("sdk_call_sustained_c32", run, float("nan"), f"{sustained:g}s; ")
        # one upstream session per target and gateway replica: the sync's initialize and one more
        stats = self.http.get(self.sdk.url.removesuffix("/mcp") + "/stats").json()
        self.info["sdk_initialize_requests"] = stats["initialize"]
        say(f"  the SDK target saw {stats['initialize']} initialize requests in all (sync and calls)")

    def eras(self) -> None:
        """tools/list (1 target) and tools/call at 2026-07-28 next to the same at 2025-11-25 (issue
        13): the modern request carries its envelope and mirrored headers and no session; each pair
        runs A B B A (``Wrk.pair``)."""
        say("2026-07-28 vs 2025-11-25: tools/list (1 target) and tools/call, same gateway")
        n = CATALOG_SIZES[0]
        url, session = self.gateways[n]["gatewayUrl"], self.sessions[n]
        for label, method, params in (
            ("tools_list", "tools/list", {}),
            ("tools_call", "tools/call", {"name": "synced___echo", "arguments": {"text": "hello"}}),
        ):
            legacy = rpc_body(method, params)
            modern, headers = modern_call(method, params)
            answer = self.http.post(url, content=modern, headers=headers).json()
            assert answer.get("result", {}).get("resultType") == "complete", answer
            for conns in (1, 32):
                self.wrk.run("warmup", url, legacy, session, conns, duration=1, record=False, check=True)
                self.wrk.run("warmup", url, modern, headers, conns, duration=1, record=False, check=True)
                a, b = self.wrk.pair(
                    (f"{label}_2025_c{conns}", url, legacy, session),
                    (f"{label}_2026_c{conns}", url, modern, headers),
                    conns,
                    check=True,
                )
                cpu = {"gw": "gateway"} if method == "tools/list" else {"gw": "gateway", "up": "upstream"}
                self.cases.append(measured(f"{label}_2025_c{conns}", a, 1.0, cpu))
                self.cases.append(
                    measured(
                        f"{label}_2026_c{conns}",
                        b,
                        b.rps / a.rps,
                        cpu,
                        note=f"{b.rps / a.rps:.2f}x the 2025-11-25 rps, p50 {b.p50_ms - a.p50_ms:+.2f} ms",
                    )
                )

    def observe(self) -> None:
        """What metrics and tracing cost (issue 15): tools/list (1 target) and tools/call through two
        replicas of the gateway on this stack, one with ``GATEWAY_METRICS_ENABLED=false`` and no
        tracing, one with the metrics and tracing on, exporting to an OTLP collector with the sampler
        docs/observability.md recommends (``parentbased_traceidratio`` 0.01). Each case runs
        A B B A B A A B (at least 5 s each); the figure is each replica's CPU per request over its
        four runs (CPU seconds / requests)."""
        say("metrics and tracing: a replica with them vs one without, same stack")
        from harness.otlp import OtlpCollector

        sink = OtlpCollector(keep=False)
        plain = self.stack.start_gateway_replica(same_public_url=False, GATEWAY_METRICS_ENABLED="false")
        observed = self.stack.start_gateway_replica(
            same_public_url=False,
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0.01",
        )
        self.wrk.watch = {**self.watch, "plain": plain.pid, "observed": observed.pid}
        n = CATALOG_SIZES[0]
        path, session = urlsplit(self.gateways[n]["gatewayUrl"]).path, self.sessions[n]
        try:
            for label, method, params in (
                ("tools_list", "tools/list", {}),
                ("tools_call", "tools/call", {"name": "synced___echo", "arguments": {"text": "hello"}}),
            ):
                body = rpc_body(method, params)
                urls = {
                    name: f"{proc.url}{path}" for name, proc in (("plain", plain), ("observed", observed))
                }
                for conns in (1, 32):
                    for url in urls.values():
                        self.wrk.run(
                            "warmup", url, body, session, conns, duration=1, record=False, check=True
                        )
                    # A B B A, then B A A B: each replica runs as often first, middle and last
                    plain_spec = (f"{label}_plain_c{conns}", urls["plain"], body, session)
                    observed_spec = (f"{label}_observed_c{conns}", urls["observed"], body, session)
                    how: dict[str, Any] = {"check": True, "duration": max(self.args.duration, 5.0)}
                    a1, b1 = self.wrk.pair(plain_spec, observed_spec, conns, **how)
                    b2, a2 = self.wrk.pair(observed_spec, plain_spec, conns, **how)
                    a, b = merge(a1, a2), merge(b1, b2)
                    # CPU per request of each replica over its four runs (unrounded seconds / requests)
                    per = {
                        name: run.cpu_s.get(name, 0.0) / max(run.requests, 1) * 1e6
                        for name, run in (("plain", a), ("observed", b))
                    }
                    ratio = per["observed"] / per["plain"]
                    self.cases.append(
                        measured(
                            f"{label}_plain_c{conns}",
                            a,
                            1.0,
                            {"gw": "plain"},
                            note=f"gw {per['plain']:.1f} us/req",
                        )
                    )
                    self.cases.append(
                        measured(
                            f"{label}_observed_c{conns}",
                            b,
                            b.rps / a.rps,
                            {"gw": "observed"},
                            extra={
                                "cpu_us_per_request": per["observed"],
                                "cpu_vs_plain": ratio,
                            },
                            note=f"gw {per['observed']:.1f} us/req, {ratio:.3f}x plain",
                        )
                    )
            self.info["observe_spans_exported"] = sink.received
        finally:
            self.wrk.watch = self.watch
            plain.stop()
            observed.stop()
            sink.stop()

    def user_auth_setup(self) -> None:
        if hasattr(self, "jwt_gw"):
            return  # done for an earlier case group
        say("authorization-code set-up: credential provider, CUSTOM_JWT gateway, user consent")
        client_id, secret = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        r = self.identity.post(
            "/identities/CreateOauth2CredentialProvider",
            json={
                "name": f"bench-as-{secrets.token_hex(3)}",
                "credentialProviderVendor": "CustomOauth2",
                "oauth2ProviderConfigInput": {
                    "customOauth2ProviderConfig": {
                        "oauthDiscovery": {
                            "discoveryUrl": f"{self.oidc.url}/.well-known/openid-configuration"
                        },
                        "clientId": client_id,
                        "clientSecret": secret,
                    }
                },
            },
        )
        assert r.status_code == 201, r.text
        provider = r.json()
        harness.register_oidc_client(
            self.oidc, client_id, client_secret=secret, redirect_uris=[provider["callbackUrl"]]
        )
        self.provider = provider["name"]
        audience = f"https://gatehouse.bench/{secrets.token_hex(4)}"
        self.jwt_gw = self.loop.run(
            self.admin.create_jwt_gateway(self.oidc.url, audience, name=f"bench-jwt-{secrets.token_hex(3)}")
        )
        gid = self.jwt_gw["gatewayId"]
        echo = fast_upstream.tools(1)
        up = f"{self.upstream.url}/mcp"
        self.loop.run(self.admin.create_target(gid, target_body("open", up, inline_tools=echo)))
        self.loop.run(
            self.admin.create_target(
                gid, user_target_body("user", up, self.provider, self.catcher.callback_url, inline_tools=echo)
            )
        )
        say("  provider, gateway and targets created")
        self.user_jwt = harness.mint_jwt(self.oidc, sub="U1", aud=audience, ttl=3600)
        url = self.jwt_gw["gatewayUrl"]
        self.user_mcp = Mcp({"Authorization": f"Bearer {self.user_jwt}"})
        self.jwt_session = self.loop.run(self.user_mcp.open(url))
        say("  user session open (initialize with the user's JWT)")

        async def served() -> bool:
            return await self.user_mcp.count_tools(url, self.jwt_session) >= 2

        self.loop.run(wait_until("the JWT gateway's catalog", served))
        say("  catalog served")
        call = {"name": "user___echo", "arguments": {"text": "hello"}}
        first = self.loop.run(self.user_mcp.rpc(url, self.jwt_session, "tools/call", call))
        assert first.get("error", {}).get("code") == -32042, first
        consent_url = first["error"]["data"]["elicitations"][0]["url"]
        say("  -32042 received; consenting as U1")
        landed = harness.login_http(consent_url, "U1", harness.OIDC_USERS["U1"])
        session_uri = httpx.URL(landed).params.get("session_id")
        assert session_uri, landed
        r = self.http.post(
            f"{self.stack.identity_url}/identities/CompleteResourceTokenAuth",
            json={"userIdentifier": {"userToken": self.user_jwt}, "sessionUri": session_uri},
        )
        assert r.status_code == 200, r.text
        again = self.loop.run(self.user_mcp.rpc(url, self.jwt_session, "tools/call", call))
        assert again.get("result", {}).get("content", [{}])[0].get("text") == "hello", again

    def tools_call_3lo(self) -> None:
        say("tools_call_3lo (vault hit) vs the same call on an open target of the same gateway")
        url = self.jwt_gw["gatewayUrl"]
        open_call = rpc_body("tools/call", {"name": "open___echo", "arguments": {"text": "hello"}})
        user_call = rpc_body("tools/call", {"name": "user___echo", "arguments": {"text": "hello"}})
        self.call_3lo_args = (url, user_call, self.jwt_session)
        for conns in (1, 32):
            self.wrk.run(
                "warmup", url, open_call, self.jwt_session, conns, duration=1, record=False, check=True
            )
            self.wrk.run(
                "warmup", url, user_call, self.jwt_session, conns, duration=1, record=False, check=True
            )
            o, u = self.wrk.pair(
                (f"tools_call_open_c{conns}", url, open_call, self.jwt_session),
                (f"tools_call_3lo_c{conns}", url, user_call, self.jwt_session),
                conns,
                check=True,
            )
            cost = u.p50_ms / o.p50_ms if conns == 1 else o.rps / u.rps
            self.cases.append(measured(f"tools_call_open_c{conns}", o, 1.0, {"gw": "gateway"}))
            self.cases.append(
                measured(
                    f"tools_call_3lo_c{conns}",
                    u,
                    cost,
                    {"gw": "gateway", "id": "identity", "db": "mongo"},
                    note="cost: p50 3lo/open" if conns == 1 else "cost: rps open/3lo",
                )
            )

    def sync_1000(self) -> None:
        say(f"sync_{SYNC_TOOLS}: target creation -> READY for a {SYNC_TOOLS}-tool target")
        gw = self.loop.run(self.admin.create_gateway(f"bench-sync-{secrets.token_hex(3)}"))
        times: list[float] = []
        answered: list[float] = []
        for i in range(REPEATS):
            t0 = time.perf_counter()
            created = self.loop.run(
                self.admin.create_target(
                    gw["gatewayId"], target_body(f"big{i}", f"{self.upstream.url}/mcp-{SYNC_TOOLS}")
                )
            )
            t1 = time.perf_counter()
            seen = self.events.wait("target.synchronized", created["targetId"])
            times.append(1000 * (seen - t0))
            answered.append(1000 * (t1 - t0))
            target = self.loop.run(self.admin.target(gw["gatewayId"], created["targetId"]))
            assert target["status"] == "READY" and target["toolCount"] == SYNC_TOOLS, target
            say(f"  run {i + 1}: {times[-1]:.0f} ms (the create call answered after {answered[-1]:.0f} ms)")
        p50 = statistics.median(times)
        self.cases.append(
            Case(
                f"sync_{SYNC_TOOLS}",
                p50,
                max(times),
                float("nan"),
                p50 / 2000,
                extra={"create_call_ms": statistics.median(answered)},
                note=f"ms (runs: {', '.join(f'{t:.0f}' for t in times)}); create call "
                f"{statistics.median(answered):.0f} ms; ratio vs 2 s budget",
            )
        )

    def ready_after_consent(self, name: str = "ready_after_consent") -> None:
        import pymongo

        with pymongo.MongoClient(self.stack.mongo_url) as client:
            stored = client[self.stack.gatehouse_db]["targets"].count_documents({})
        say(f"{name}: CompleteResourceTokenAuth -> READY (implicit sync), {stored} targets stored")
        gid = self.jwt_gw["gatewayId"]
        times: list[float] = []
        complete: list[float] = []
        resumed: list[float] = []
        for i in range(REPEATS):
            body = user_target_body(
                f"implicit{secrets.token_hex(3)}{i}",
                f"{self.upstream.url}/mcp",
                self.provider,
                self.catcher.callback_url,
            )
            created = self.loop.run(self.admin.create_target(gid, body))
            self.events.wait("target.authorization_required", created["targetId"])
            pending = self.loop.run(self.admin.target(gid, created["targetId"]))
            assert pending["status"] == "CREATE_PENDING_AUTH", pending
            oauth2 = pending["authorizationData"]["oauth2"]
            landed = harness.login_http(oauth2["authorizationUrl"], "admin", harness.OIDC_USERS["admin"])
            session_uri = httpx.URL(landed).params.get("session_id")
            assert session_uri, landed
            t0 = time.perf_counter()
            r = self.identity.post(
                "/identities/CompleteResourceTokenAuth",
                json={"userIdentifier": {"userId": oauth2["userId"]}, "sessionUri": session_uri},
            )
            t1 = time.perf_counter()
            assert r.status_code == 200, r.text
            seen = self.events.wait("target.synchronized", created["targetId"])
            # the event names the session (the authorization URL's request_uri); the return URL
            # carries only a completion handle for it (session_id)
            request_uri = httpx.URL(oauth2["authorizationUrl"]).params["request_uri"]
            issued = self.events.wait("identity.token_issued", request_uri)
            times.append(1000 * (seen - t0))
            complete.append(1000 * (t1 - t0))
            resumed.append(1000 * (seen - issued))
            ready = self.loop.run(self.admin.target(gid, created["targetId"]))
            assert ready["status"] == "READY", ready
            say(
                f"  run {i + 1}: {times[-1]:.0f} ms (CompleteResourceTokenAuth answered after "
                f"{complete[-1]:.0f} ms; "
                f"token_issued -> synchronized {resumed[-1]:.0f} ms)"
            )
        p50 = statistics.median(times)
        self.cases.append(
            Case(
                name,
                p50,
                max(times),
                float("nan"),
                p50 / 100,
                extra={
                    "complete_call_ms": statistics.median(complete),
                    "resume_ms": statistics.median(resumed),
                },
                note=f"ms (runs: {', '.join(f'{t:.0f}' for t in times)}); {stored} targets stored; "
                f"Complete call {statistics.median(complete):.0f} ms, token_issued->synchronized "
                f"{statistics.median(resumed):.0f} ms; ratio vs 100 ms budget",
            )
        )

    def db_probe(self) -> None:
        """How long the queries on the sync and admin paths take on this database, with the whole
        catalog stored: by ``_id`` alone, by ``_id`` plus another field, by a status field."""
        import pymongo

        client: Any = pymongo.MongoClient(self.stack.mongo_url)
        try:
            targets = client[self.stack.gatehouse_db]["targets"]
            # a row stored late (the last copy): FerretDB answers a non-_id filter by scanning the table
            # in storage order and stops at the first match, so an early row would look cheap
            big = CATALOG_SIZES[-1]
            tid, gid = f"C{big - 1:09d}", self.gateways[big]["gatewayId"]
            assert targets.find_one({"_id": tid}, {"_id": 1}) is not None
            probes = {
                "targets": float(targets.count_documents({})),
                "find {_id}": ({"_id": tid}, None),
                "find {_id, gatewayId}": ({"_id": tid, "gatewayId": gid}, None),
                "find {_id, gatewayId} without toolsJson": ({"_id": tid, "gatewayId": gid}, {"toolsJson": 0}),
                "find {_id, generation}": ({"_id": tid, "generation": 1}, {"toolsJson": 0}),
                "find {status.pending.sessionUri}": (
                    {"status.pending.sessionUri": "urn:x"},
                    {"toolsJson": 0},
                ),
            }
            out: dict[str, float] = {}
            for name, probe in probes.items():
                if isinstance(probe, float):
                    out[name] = probe
                    continue
                query, projection = probe
                runs = []
                for _ in range(5):
                    t = time.perf_counter()
                    targets.find_one(query, projection)
                    runs.append(1000 * (time.perf_counter() - t))
                out[name + " (ms)"] = round(statistics.median(runs), 2)
        finally:
            client.close()
        self.info["db_probe"] = out
        say("database probe: " + ", ".join(f"{k} {v:g}" for k, v in out.items()))

    def memory(self) -> None:
        empty = self.info["rss_empty_kib"]["VmRSS"]
        now = rss_kib(self.gw_pid)
        at_catalog = self.info.get("rss_catalog_kib", now)
        rss = at_catalog["VmRSS"]
        self.cases.append(
            Case(
                "gateway_rss",
                float("nan"),
                float("nan"),
                float("nan"),
                rss / empty,
                extra={
                    "rss_mib": rss / 1024,
                    "empty_rss_mib": empty / 1024,
                    "peak_rss_mib": now["VmHWM"] / 1024,
                },
                note=f"{rss / 1024:.0f} MiB with {self.info['cached_tools']} tools "
                f"(empty {empty / 1024:.0f} MiB, "
                f"peak {now['VmHWM'] / 1024:.0f} MiB)",
            )
        )

    # -- profiles -----------------------------------------------------------------------------

    def profile(self, groups: set[str]) -> None:
        if not pyspy_binary():
            say("py-spy not found: skipping profiles (pip install py-spy into .venv)")
            return
        seconds = self.args.profile_seconds
        big = CATALOG_SIZES[-1]
        gw = [("gateway", self.gw_pid)]
        plans = [  # (case group, profile name, processes, load, check the answers)
            (
                "list",
                "tools_list_1000t_c32",
                gw,
                (self.gateways[big]["gatewayUrl"], rpc_body("tools/list", {}), self.sessions[big]),
                False,
            ),
            (
                "list",
                "tools_list_1t_c32",
                gw,
                (self.gateways[1]["gatewayUrl"], rpc_body("tools/list", {}), self.sessions[1]),
                False,
            ),
            ("call", "tools_call_c32", gw, getattr(self, "call_args", None), True),
            (
                "3lo",
                "tools_call_3lo_c32",
                [*gw, ("identity", self.stack.identity.pid)],
                getattr(self, "call_3lo_args", None),
                True,
            ),
            ("stack", "sdk_call_c32", gw, getattr(self, "sdk_call_args", None), True),
        ]
        for group, name, targets, load, check in plans:
            if group not in groups or load is None:
                continue  # its case group did not run
            url, body, headers = load
            say(f"profiling {name} with py-spy ({seconds:g}s)")
            spies = []
            for who, pid in targets:
                assert pid
                spies += start_pyspy(pid, self.out / f"profile-{name}-{who}", seconds)
            time.sleep(0.3)
            self.wrk.run(name, url, body, headers, 32, duration=seconds - 0.5, check=check, record=False)
            for p in spies:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
            for who, _ in targets:
                summary = summarize_profile(self.out / f"profile-{name}-{who}.txt")
                self.profiles[f"{name}/{who}"] = summary
                (self.out / f"profile-{name}-{who}.top.json").write_text(json.dumps(summary, indent=1))

    # -- report -------------------------------------------------------------------------------

    def report(self) -> None:
        m = self.info["machine"]
        print("\n" + "=" * 112)
        print(
            f"Gatehouse benchmarks: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
            f"Linux {m['kernel']}, "
            f"Python {m['python']}, {m['wrk']}"
        )
        print(
            f"load: {self.args.duration:g}s per case; mongo: {getattr(self.mongo, 'kind', '?')}; "
            f"cpu = cores used by the named processes during the case"
        )
        print("=" * 112)
        print(f"{'case':<24}{'conc':>5}{'p50 ms':>9}{'p99 ms':>9}{'rps':>10}{'ratio':>7}  {'cpu':<30} note")
        for c in self.cases:
            conc = "" if c.conns is None else str(c.conns)
            err = f" ERRORS={c.errors}" if c.errors else ""
            rps = "" if c.rps != c.rps else f"{c.rps:.0f}"
            ratio = "" if c.ratio != c.ratio else f"{c.ratio:.2f}"
            p50 = "" if c.p50_ms != c.p50_ms else f"{c.p50_ms:.2f}"
            p99 = "" if c.p99_ms != c.p99_ms else f"{c.p99_ms:.2f}"
            print(f"{c.name:<24}{conc:>5}{p50:>9}{p99:>9}{rps:>10}{ratio:>7}  {c.cpu:<30} {c.note}{err}")
        print()
        for c in self.cases:
            extra = "".join(f" {k}={fmt(v)}" for k, v in c.extra.items())
            print(
                f"bench {c.name} p50_ms={fmt(c.p50_ms)} p99_ms={fmt(c.p99_ms)} rps={fmt(c.rps, 1)} "
                f"ratio={fmt(c.ratio, 3)}{extra}"
            )
        others = [r.other_cpu for r in self.wrk.runs]
        if others:
            worst = max(self.wrk.runs, key=lambda r: r.other_cpu)
            print(
                f"\nother load on the machine during the cases (cores, not ours nor wrk): "
                f"median {statistics.median(others):.2f}, max {worst.other_cpu:.2f} ({worst.case})"
                + ("  WARNING: the machine was busy; numbers are disturbed" if worst.other_cpu > 0.25 else "")
            )
        print()
        for line in self.targets():
            print(line)
        for name, summary in self.profiles.items():
            print_profile(name, summary)
        results = {
            "info": self.info,
            "cases": [asdict(c) for c in self.cases],
            "runs": [asdict(r) for r in self.wrk.runs],
            "targets": self.targets(),
            "profiles": self.profiles,
            "seconds": round(time.monotonic() - T0, 1),
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"\nresults: {self.out / 'results.json'}; service logs: {harness.log_dir()}")

    def targets(self) -> list[str]:
        by = {c.name: c for c in self.cases}
        lines = ["targets (issues 6 and 12):"]

        def check(ok: bool, text: str) -> None:
            lines.append(f"  {'PASS' if ok else 'MISS'}  {text}")

        for n in CATALOG_SIZES:
            c = by.get(f"tools_list_{n}t")
            if c:
                check(c.ratio >= 0.9, f"tools_list {n} targets >= 0.9x floor rps (c32): {c.ratio:.2f}x")
        c32 = by.get("tools_call_c32")
        if c32:
            check(
                c32.extra["added_p50_ms"] <= 1.0,
                f"tools_call adds <= 1 ms p50 at c32: +{c32.extra['added_p50_ms']:.2f} ms",
            )
            check(
                c32.extra["added_p99_ms"] <= 3.0,
                f"tools_call adds <= 3 ms p99 at c32: +{c32.extra['added_p99_ms']:.2f} ms",
            )
            check(c32.ratio >= 0.7, f"tools_call keeps >= 0.7x direct rps at c32: {c32.ratio:.2f}x")
        for conc in (1, 32):
            c = by.get(f"tools_call_3lo_c{conc}")
            if c:
                what = "p50" if conc == 1 else "rps"
                check(c.ratio <= 1.2, f"tools_call_3lo <= 1.2x open ({what}, c{conc}): {c.ratio:.2f}x")
        lines += self.stack_targets(by)
        for label in ("tools_list", "tools_call"):
            for conc in (1, 32):
                if c := by.get(f"{label}_2026_c{conc}"):
                    what = f"{label} at 2026-07-28 >= 0.9x 2025-11-25 rps (c{conc}, issue 13)"
                    check(c.ratio >= 0.9, f"{what}: {c.ratio:.2f}x")
        c = by.get(f"sync_{SYNC_TOOLS}")
        if c:
            check(c.p50_ms <= 2000, f"sync_{SYNC_TOOLS} <= 2 s: {c.p50_ms:.0f} ms (max {c.p99_ms:.0f} ms)")
        for name in ("ready_after_consent_small", "ready_after_consent"):
            if c := by.get(name):
                check(c.p50_ms <= 100, f"{name} <= 100 ms: {c.p50_ms:.0f} ms (max {c.p99_ms:.0f} ms)")
        return lines

    @staticmethod
    def stack_targets(by: dict[str, Case]) -> list[str]:
        """Issue 12's targets (the whole stack, an SDK target)."""
        out: list[str] = []

        def check(ok: bool, text: str) -> None:
            out.append(f"  {'PASS' if ok else 'MISS'}  {text}")

        if c := by.get("sdk_call_c1"):
            added = c.extra["added_p50_ms"]
            check(added <= 1.0, f"SDK target: tools/call adds <= 1 ms p50 at c1: +{added:.2f} ms")
        if c := by.get("sdk_call_c32"):
            check(c.ratio >= 0.9, f"SDK target: tools/call keeps >= 0.9x direct rps at c32: {c.ratio:.2f}x")
        for name in ("sdk_call_c1", "sdk_call_c32", "sdk_call_sustained_c32"):
            if c := by.get(name):
                gw = c.extra["cpu_ms_gw"]
                check(gw <= 0.5, f"{name}: gateway CPU per call <= 0.5 ms: {gw:.2f} ms")
        for name in ("sdk_call_c32", "stack_call_trivial_c32", "sdk_call_sustained_c32"):
            if c := by.get(name):
                ratio = c.extra["stack_vs_gw"]
                check(ratio <= 1.5, f"{name}: whole-stack CPU per call <= 1.5x the gateway's: {ratio:.1f}x")
        if c := by.get("sdk_call_sustained_c32"):
            check(
                c.extra["drain_s"] <= 2.0, f"drain after the sustained run <= 2 s: {c.extra['drain_s']:.1f} s"
            )
        return out

    def stop(self) -> None:
        self.http.close()
        if hasattr(self, "events"):
            self.events.close()
        if hasattr(self, "loop"):
            for client in (self.admin.http, self.mcp.http, getattr(self, "user_mcp", self.mcp).http):
                self.loop.run(client.aclose())
            self.identity.close()
            self.loop.close()
        if hasattr(self, "catcher"):
            self.catcher.stop()
        harness.stop_all()
        shutil.rmtree(self.tmp / "nats", ignore_errors=True)
        shutil.rmtree(self.tmp / "mongo", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="tools_list at concurrency 32 only")
    parser.add_argument("--profile", action="store_true", help="also sample the gateway with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument(
        "--burst",
        type=float,
        default=10.0,
        help="seconds of each whole-stack burst (--only stack; default 10)",
    )
    parser.add_argument(
        "--sustained",
        type=float,
        default=30.0,
        help="seconds of the sustained whole-stack run (0: none; default 30)",
    )
    parser.add_argument("--only", default="", help=f"comma-separated case groups ({','.join(GROUPS)})")
    parser.add_argument("--out", default=str(BENCH / "out"), help="where results.json and profiles go")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk; `make bench` does it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    try:
        bench.start()
        bench.ceiling()
        only = set(args.only.split(",")) if args.only else set(GROUPS)
        if unknown := only - set(GROUPS):
            sys.exit(f"bench: --only takes {','.join(GROUPS)}, not {','.join(sorted(unknown))}")
        if "consent" in only:  # first on a nearly empty database, again with the whole catalog stored
            bench.user_auth_setup()
            bench.ready_after_consent("ready_after_consent_small")
        bench.build_catalogs()
        for group, steps in GROUPS.items():
            if group in only:
                for step in steps:
                    getattr(bench, step)()
        if args.profile:
            bench.profile(only)
        bench.report()
    finally:
        bench.stop()
    say(f"done in {time.monotonic() - T0:.0f}s")


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    main()
