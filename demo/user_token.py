"""Print a demo user's access token for the demo gateway (signs in at the demo identity provider
with the user's demo password, no browser).

    .venv/bin/python demo/user_token.py alice http://127.0.0.1:8080/gateways/<id>/mcp

The token is a JWT for that MCP URL, valid for an hour: put it in an MCP client's
`Authorization: Bearer <token>` header.
"""

from __future__ import annotations

import argparse
import sys

from common import USERS, Demo, user_token


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("user", choices=sorted(USERS))
    p.add_argument("mcp_url", help="the demo gateway's MCP URL (make demo prints it)")
    args = p.parse_args(argv)
    try:
        print(user_token(Demo.from_env().idp, args.user, args.mcp_url))
    except RuntimeError as e:
        sys.exit(f"user_token: {e}")


if __name__ == "__main__":
    main()
