"""``gatehouse-identity``: run the identity service; ``gatehouse-identity rotate-vault`` re-seals secrets."""

from __future__ import annotations

import sys

from gatehouse_contracts.config import run_http

from . import rotation
from .app import build
from .settings import Settings


def main() -> None:
    if sys.argv[1:] == ["rotate-vault"]:
        rotation.main(Settings.from_env())
        return
    if sys.argv[1:]:
        sys.exit("usage: gatehouse-identity [rotate-vault]")
    run_http("identity", Settings.from_env, build, host_attr="identity_host", port_attr="identity_port")


if __name__ == "__main__":
    main()
