"""Gatehouse services as processes (their settings: docs/configuration.md)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .credentials import ADMIN_TOKEN, NATS_PASSWORDS, SESSION_SECRET, TOKEN_KEYS, VAULT_KEYS
from .procs import DEFAULT_TIMEOUT, LOCALHOST, REPO, Proc, free_port


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
    "CONSOLE_",
    "NATS_",
    "MONGODB_",
    "LOG_LEVEL",
)

SERVICES: dict[str, ServiceSpec] = {
    "gateway": ServiceSpec("gatehouse_gateway", "GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_PUBLIC_URL"),
    "identity": ServiceSpec("gatehouse_identity", "IDENTITY_HOST", "IDENTITY_PORT", "IDENTITY_PUBLIC_URL"),
    "sync-worker": ServiceSpec("gatehouse_sync_worker", "SYNC_WORKER_HOST", "SYNC_WORKER_HEALTH_PORT", None),
    "audit": ServiceSpec("gatehouse_audit", "AUDIT_HOST", "AUDIT_HEALTH_PORT", None),
    "console": ServiceSpec("gatehouse_console", "CONSOLE_HOST", "CONSOLE_PORT", "CONSOLE_PUBLIC_URL"),
}


def service_env(nats_url: str, mongo_url: str, *, run_id: str | None = None, **extra: str) -> dict[str, str]:
    """The env shared by all services of one test session (docs/configuration.md, the configuration table).

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
        # identity vault) once the configuration table (docs/configuration.md) names it.
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
    /readyz unless wait=False: NATS and MongoDB reachable, or for the gateway its catalog loaded
    (its start-up reached NATS and read MongoDB first, so at start the two mean the same).

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
