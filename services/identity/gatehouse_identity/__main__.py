"""``gatehouse-identity``: run the identity service."""

from __future__ import annotations

from gatehouse_contracts.config import run_http

from .app import build
from .settings import Settings


def main() -> None:
    run_http("identity", Settings.from_env, build, host_attr="identity_host", port_attr="identity_port")


if __name__ == "__main__":
    main()
