"""``gatehouse-gateway``: run the gateway."""

from __future__ import annotations

import os

from gatehouse_contracts.config import run_http

from .app import build
from .settings import Settings


def main() -> None:
    workers = int(os.environ.get("GATEWAY_WORKERS") or 1)
    run_http(
        "gateway",
        Settings.from_env,
        build,
        host_attr="gateway_host",
        port_attr="gateway_port",
        workers=workers,
        factory="gatehouse_gateway.app:from_env",
    )


if __name__ == "__main__":
    main()
