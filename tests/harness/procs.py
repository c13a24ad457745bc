"""Processes the tests start: free ports, the session's log directory, the registry of processes and
log files, `Proc` (one subprocess with a log file), `External`, and `stop_all()`."""

from __future__ import annotations

import atexit
import itertools
import os
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
TESTS = REPO / "tests"
SERVERS = TESTS / "servers"

DEFAULT_TIMEOUT = float(os.environ.get("GATEHOUSE_TEST_START_TIMEOUT", "60"))
LOCALHOST = "127.0.0.1"


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
                "build/version/version.txt = v1.24.2 (see tests/harness/mongo.py:ferretdb_binary)."
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
