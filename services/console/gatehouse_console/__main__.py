"""``gatehouse-console``: serve the web console."""

from __future__ import annotations

from gatehouse_contracts.config import run_http

from .app import build
from .settings import Settings


def main() -> None:
    run_http("console", Settings.from_env, build, host_attr="console_host", port_attr="console_port")


if __name__ == "__main__":
    main()
