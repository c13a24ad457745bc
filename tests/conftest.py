"""Fixtures for Gatehouse's cross-service tests against real processes (see tests/harness/).

Session-scoped:
  nats_server / nats_url        nats-server -js on a free port (own temp store)
  mongo_server / mongo_url      $MONGODB_URL, else mongod, else FerretDB (SQLite) on a free port
  stack                         identity + sync-worker + gateway (harness.Stack)
  sdk_server, sdk_server_json   tests/servers/sdk_server.py, SSE / JSON responses (`.url` = MCP endpoint)
  everything_server             @modelcontextprotocol/server-everything, Streamable HTTP (`.url`)
  not_mcp_server, hanging_server  HTML-answering / never-answering HTTP servers (`.url`)
  log_dir                       the directory holding every process log of this session
  oidc_provider                 oidc-provider (IdP + upstream authorization server), `.url` = issuer
Function-scoped:
  upstreams                     factory for one-off upstream servers, stopped after the test
  return_catcher                in-process HTTP server recording where a browser lands

Fixtures that start processes are plain sync fixtures; tests may be async (asyncio_mode=auto).

Tests marked ``run_last`` (the no-secrets check, which reads what the whole run logged and
published) run after every other collected test, whatever their file names.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Test modules use `import harness`. Make that work whatever pytest's import mode, and make
# `tests.harness` the same module object should tests/ ever become a package (the harness keeps
# the registry of processes and log files; two copies would each see only half).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
import harness  # noqa: E402

if __package__:
    sys.modules.setdefault(f"{__package__}.harness", harness)


# ------------------------------------------------------------------------------------------
# session plumbing: log directory, stop everything at the end, log tails on failure
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _harness_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = harness.set_log_dir(tmp_path_factory.getbasetemp() / "logs")
    try:
        yield path
    finally:
        harness.stop_all()


@pytest.fixture(scope="session")
def log_dir(_harness_session: Path) -> Path:
    return _harness_session


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: run after every other collected test of the run")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # After any other reordering, so a run_last test sees the logs and events of every other test
    # (including the unit tests of services/ and contracts/, collected after tests/).
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)  # stable sort


def pytest_terminal_summary(terminalreporter: Any) -> None:
    files = harness.log_files()
    if files:
        terminalreporter.write_line(f"gatehouse test logs ({len(files)} files): {harness.log_dir()}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        for p in harness.processes():
            if p.popen is None:
                continue
            crashed = not p.alive and not p.stopped
            if crashed or (p.alive and p.role == "service"):
                state = "running" if p.alive else f"exited {p.returncode}"
                report.sections.append((f"log tail: {p.name} ({state}) {p.log_path}", p.log_tail(30)))


# ------------------------------------------------------------------------------------------
# infrastructure
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Proc]:
    proc = harness.start_nats(tmp_path_factory.mktemp("nats"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: harness.Proc) -> str:
    assert nats_server.url
    return nats_server.url


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Proc | harness.External]:
    server = harness.start_mongo(tmp_path_factory.mktemp("mongo"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_url(mongo_server: harness.Proc | harness.External) -> str:
    assert mongo_server.url
    return mongo_server.url


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per test session; used in database names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def stack(nats_url: str, mongo_url: str, mongo_server: Any, run_id: str) -> Iterator[harness.Stack]:
    """identity + sync-worker + gateway, each on a free port, sharing one NATS and MongoDB.

    stack.gateway_url / identity_url / admin_token / admin_headers / env (the service env) /
    gatehouse_db / identity_db; stack.gateway, .identity, .sync_worker are harness.Proc;
    stack.start_gateway_replica(), stack.restart_sync_worker(kill9=True), ...
    """
    s = harness.start_stack(nats_url, mongo_url, run_id=run_id)
    try:
        yield s
    finally:
        s.stop()
        if isinstance(mongo_server, harness.External):  # don't litter somebody else's MongoDB
            _drop_databases(mongo_url, [s.gatehouse_db, s.identity_db])


def _drop_databases(url: str, names: list[str]) -> None:
    try:
        import pymongo

        client: Any = pymongo.MongoClient(url, serverSelectionTimeoutMS=3000)
        try:
            for name in names:
                client.drop_database(name)
        finally:
            client.close()
    except Exception as e:  # noqa: BLE001
        print(f"warning: could not drop test databases {names}: {e}")


# ------------------------------------------------------------------------------------------
# upstream MCP servers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sdk_server() -> Iterator[harness.Proc]:
    """Official-SDK server, SSE responses, stateful; `.url` = http://127.0.0.1:<port>/mcp."""
    proc = harness.start_sdk_server()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sdk_server_json() -> Iterator[harness.Proc]:
    """Official-SDK server, JSON responses, stateful; `.url` = http://127.0.0.1:<port>/mcp."""
    proc = harness.start_sdk_server(json_response=True)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def everything_server() -> Iterator[harness.Proc]:
    """@modelcontextprotocol/server-everything (Streamable HTTP); `.url` = http://127.0.0.1:<port>/mcp."""
    proc = harness.start_everything_server()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def not_mcp_server() -> Iterator[harness.Proc]:
    proc = harness.start_not_mcp()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def hanging_server() -> Iterator[harness.Proc]:
    proc = harness.start_not_mcp(hang=True)
    yield proc
    proc.stop()


class Upstreams:
    """Start one-off upstream servers inside a test; all are stopped when the test ends."""

    def __init__(self) -> None:
        self.started: list[harness.Proc] = []

    def _keep(self, proc: harness.Proc) -> harness.Proc:
        self.started.append(proc)
        return proc

    def sdk(self, **kwargs: Any) -> harness.Proc:
        """kwargs: json_response, extra_tools, page_size, stateless, bearer_tokens, tricky_schema,
        jwt_issuer, jwt_audience, jwt_scopes, era ("legacy", "dual", "modern"), interactive_tools."""
        return self._keep(harness.start_sdk_server(**kwargs))

    def everything(self) -> harness.Proc:
        return self._keep(harness.start_everything_server())

    def not_mcp(self, hang: bool = False, bad_error: bool = False) -> harness.Proc:
        return self._keep(harness.start_not_mcp(hang=hang, bad_error=bad_error))

    def stop(self) -> None:
        for p in reversed(self.started):
            p.stop()


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    u = Upstreams()
    try:
        yield u
    finally:
        u.stop()


# ------------------------------------------------------------------------------------------
# OAuth: the authorization server (oidc-provider) and somewhere for browsers to land
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[harness.Proc]:
    """oidc-provider (tests/servers/oidc/server.mjs) with harness.default_oidc_config():
    users harness.OIDC_USERS (U1, U2, ...), clients harness.OIDC_CLIENTS; `.url` = issuer.
    Shared by the session: register per-test clients/redirect URIs with
    harness.register_oidc_client() rather than changing the defaults."""
    proc = harness.start_oidc_provider()
    yield proc
    proc.stop()


@pytest.fixture
def return_catcher() -> Iterator[harness.ReturnCatcher]:
    """harness.ReturnCatcher: `.callback_url` to land on, `.wait()` for the recorded query."""
    catcher = harness.start_return_catcher()
    try:
        yield catcher
    finally:
        catcher.stop()
