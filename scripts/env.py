"""`make env`: write .env for `docker compose` from .env.example, with fresh secrets.

    python3 scripts/env.py [--force] [--example .env.example] [--output .env]

Every empty `NAME=` line of the example gets a newly generated value in the format its setting
wants; comments and every other line are copied as they are. An existing output file is kept
unless --force (it holds the keys that open identity's vault: replacing them loses every stored
secret). Standard library only, so it runs before any bootstrap.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _token() -> str:
    return secrets.token_urlsafe(32)


def _nats_password() -> str:
    # hex after a letter: nats-server reads the value through its config lexer, which would take
    # a leading digit for a number
    return "n" + secrets.token_hex(24)


GENERATORS: dict[str, Callable[[], str]] = {
    "GATEHOUSE_ADMIN_TOKEN": _token,
    "GATEHOUSE_SESSION_SECRET": _token,
    "IDENTITY_VAULT_KEYS": lambda: "v1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "IDENTITY_TOKEN_KEYS": lambda: "t1:" + secrets.token_urlsafe(48),
    **{
        f"GATEHOUSE_NATS_{user}_PASSWORD": _nats_password
        for user in ("GATEWAY", "IDENTITY", "SYNC_WORKER", "AUDIT", "ADMIN")
    },
    "DEMO_IDP_ADMIN_SECRET": _token,
}

EMPTY = re.compile(r"^([A-Z][A-Z0-9_]*)=\s*$")


def render(example: str) -> str:
    out = []
    for line in example.splitlines():
        m = EMPTY.match(line)
        if m:
            name = m.group(1)
            if name not in GENERATORS:
                raise SystemExit(f"env: {name} is empty in the example and has no generator")
            line = f"{name}={GENERATORS[name]()}"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--example", type=Path, default=ROOT / ".env.example")
    p.add_argument("--output", type=Path, default=ROOT / ".env")
    args = p.parse_args(argv)
    if args.output.exists() and not args.force:
        sys.exit(
            f"env: {args.output} exists; keeping it (its keys open identity's vault). "
            "`make env FORCE=1` replaces it."
        )
    text = render(args.example.read_text())
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(args.output, 0o600)
    print(f"env: wrote {args.output} with fresh secrets (mode 600); next: docker compose up --build")


if __name__ == "__main__":
    main()
