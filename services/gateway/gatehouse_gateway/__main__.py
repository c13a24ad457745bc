"""``gatehouse-gateway``: run the gateway."""

from __future__ import annotations

from gatehouse_contracts.config import run_http

from .app import build
from .settings import Settings


def main() -> None:
    run_http(
        "gateway",
        Settings.from_env,
        build,
        host_attr="gateway_host",
        port_attr="gateway_port",
        workers_attr="gateway_workers",
        factory="gatehouse_gateway.app:from_env",
    )


if __name__ == "__main__":
    main()
