"""``gatehouse``: command-line helpers for Gatehouse."""

from __future__ import annotations

import argparse
import os
import sys

from .authorize import AuthorizeError, Request, admin_token_from_env, fail, run, target_authorization


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatehouse", description="Command-line helpers for Gatehouse.")
    commands = parser.add_subparsers(dest="command", required=True)
    auth = commands.add_parser(
        "authorize",
        help="be the return URL of a consent and complete the session",
        description="Listen on the return URL, show the authorization URL, wait for the browser, complete "
        "the session (CompleteResourceTokenAuth).",
    )
    source = auth.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--url", help="the authorization URL (from a -32042 error or a target's authorizationData)"
    )
    source.add_argument(
        "--target",
        nargs=2,
        metavar=("GATEWAY_ID", "TARGET_ID"),
        help="a target waiting for an admin's consent: its URL and user id are read for you",
    )
    auth.add_argument(
        "--return-url",
        required=True,
        help="where the browser comes back: the target's defaultReturnUrl, http://127.0.0.1:<port>/...",
    )
    who = auth.add_mutually_exclusive_group()
    who.add_argument("--user-id", help="complete as this user id (admin; implicit sync)")
    who.add_argument(
        "--user-token", help="complete as the gateway user of this JWT (or env GATEHOUSE_USER_TOKEN)"
    )
    auth.add_argument(
        "--identity-url", default=os.environ.get("IDENTITY_PUBLIC_URL", "http://127.0.0.1:8081")
    )
    auth.add_argument("--gateway-url", default=os.environ.get("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8080"))
    auth.add_argument("--open", action="store_true", help="open the URL in the default browser")
    auth.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the browser (default 600)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    admin_token = admin_token_from_env()
    user_token = args.user_token or os.environ.get("GATEHOUSE_USER_TOKEN")
    try:
        url, user_id = args.url, args.user_id
        if args.target:
            if not admin_token:
                fail("--target needs the admin token in GATEHOUSE_ADMIN_TOKEN")
            url, user_id = target_authorization(args.gateway_url, admin_token or "", *args.target)
        if not user_id and not user_token:
            fail("say who completes the session: --user-id (admin) or --user-token (gateway user)")
        if user_id and not admin_token:
            fail("--user-id completion needs the admin token in GATEHOUSE_ADMIN_TOKEN")
        run(
            Request(
                url,
                args.return_url,
                args.identity_url,
                user_id,
                None if user_id else user_token,
                admin_token,
                args.open,
                args.timeout,
            )
        )
    except AuthorizeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
