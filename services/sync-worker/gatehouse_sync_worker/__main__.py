"""``gatehouse-sync-worker``: run the sync-worker (its HTTP port serves only /healthz and /readyz)."""

from __future__ import annotations

from gatehouse_contracts.config import run_http

from .app import build
from .settings import Settings


def main() -> None:
    run_http(
        "sync-worker",
        Settings.from_env,
        build,
        host_attr="sync_worker_host",
        port_attr="sync_worker_health_port",
    )


if __name__ == "__main__":
    main()
