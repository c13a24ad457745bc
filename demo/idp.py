"""Run the demo identity provider: the oidc-provider server the tests use
(tests/servers/oidc/server.mjs, Node >= 22 from tests/node_modules) with the demo users.

    DEMO_IDP_ADMIN_SECRET=... python demo/idp.py --port 8090 [--issuer URL] [--keys FILE]

It is both the users' identity provider (the demo gateway's CUSTOM_JWT issuer; access tokens
are RS256 JWTs for the RFC 8707 resource asked for, valid an hour) and the authorization server
of the notes server. Its clients are registered by demo/provision.py through the provider's admin
API, which DEMO_IDP_ADMIN_SECRET guards. Demo only: everything but the signing key (--keys) is
in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from common import USERS

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "servers" / "oidc" / "server.mjs"
HOUR = 3600


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--issuer", help="default http://<host>:<port>")
    p.add_argument("--keys", type=Path, help="keep the signing key in this file across restarts")
    p.add_argument("--node", default=str(ROOT / "tests" / "node_modules" / ".bin" / "node"))
    args = p.parse_args(argv)
    secret = os.environ.get("DEMO_IDP_ADMIN_SECRET", "")
    if len(secret) < 16:
        sys.exit("idp: DEMO_IDP_ADMIN_SECRET (at least 16 characters) must be set")
    config = {
        "host": args.host,
        "port": args.port,
        "issuer": args.issuer or f"http://{args.host}:{args.port}",
        "accounts": {u: {"password": pw, "name": u.capitalize()} for u, pw in USERS.items()},
        "testApiSecret": secret,
        "ttl": {"AccessToken": HOUR, "ClientCredentials": HOUR, "IdToken": HOUR},
        "keysFile": str(args.keys) if args.keys else None,
    }
    if args.keys:
        args.keys.parent.mkdir(parents=True, exist_ok=True)
    node = args.node if os.access(args.node, os.X_OK) else "node"
    # The config (it holds the admin secret) goes in the environment, not argv; exec so that
    # signals reach node directly.
    env = {**os.environ, "OIDC_CONFIG": json.dumps(config), "NODE_ENV": "test", "DEBUG": ""}
    os.execvpe(node, [node, str(SERVER)], env)  # noqa: S606 - no shell wanted


if __name__ == "__main__":
    main()
