"""``gatehouse``: the admin command line of Gatehouse (a client of the public admin APIs only)."""

from __future__ import annotations

import os
import sys

import click

from . import settings
from .apply import apply
from .authorize import AuthorizeError, Request, run, target_authorization
from .context import Context
from .resources import COMMANDS
from .status import status, tools

HELP = f"""Manage Gatehouse from the command line.

\b
Where the APIs are and the admin token, first found wins:
  --gateway-url / --identity-url, then $GATEWAY_PUBLIC_URL / $IDENTITY_PUBLIC_URL,
  then the config file ($GATEHOUSE_CONFIG, else {settings.config_path()}),
  then {settings.DEFAULT_GATEWAY_URL} / {settings.DEFAULT_IDENTITY_URL}.
  The admin token: $GATEHOUSE_ADMIN_TOKEN, then admin_token in the config file.
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--gateway-url", help="the gateway service's base URL")
@click.option("--identity-url", help="the identity service's base URL")
@click.pass_context
def main(ctx: click.Context, gateway_url: str | None, identity_url: str | None) -> None:
    context = Context(gateway_url, identity_url)
    ctx.obj = context
    ctx.call_on_close(context.close)


@main.command()
@click.option("--url", help="the authorization URL (from a -32042 error or a target's authorizationData)")
@click.option(
    "--target",
    nargs=2,
    metavar="GATEWAY_ID TARGET_ID",
    help="a target waiting for an admin's consent: its URL and user id are read for you",
)
@click.option(
    "--return-url",
    required=True,
    help="where the browser comes back: the target's defaultReturnUrl, http://127.0.0.1:<port>/...",
)
@click.option("--user-id", help="complete as this user id (admin; implicit sync)")
@click.option("--user-token", help="complete as the gateway user of this JWT (or env GATEHOUSE_USER_TOKEN)")
@click.option("--gateway-url", "own_gateway_url", help="as gatehouse --gateway-url")
@click.option("--identity-url", "own_identity_url", help="as gatehouse --identity-url")
@click.option("--open", "open_browser", is_flag=True, help="open the URL in the default browser")
@click.option(
    "--timeout", type=float, default=600.0, show_default=True, help="seconds to wait for the browser"
)
@click.pass_obj
def authorize(
    context: Context,
    url: str | None,
    target: tuple[str, str] | None,
    return_url: str,
    user_id: str | None,
    user_token: str | None,
    own_gateway_url: str | None,
    own_identity_url: str | None,
    open_browser: bool,
    timeout: float,
) -> None:
    """Be the return URL of a consent and complete the session (CompleteResourceTokenAuth).

    Listens on the return URL, shows the authorization URL, waits for the browser, then completes
    the session."""
    if bool(url) == bool(target):
        raise click.UsageError("give one of --url or --target")
    if user_id and user_token:
        raise click.UsageError("give one of --user-id or --user-token")
    found = settings.load(own_gateway_url or context.gateway_url, own_identity_url or context.identity_url)
    gateway_url, identity_url, admin_token = found.gateway_url, found.identity_url, found.admin_token
    user_token = user_token or os.environ.get("GATEHOUSE_USER_TOKEN")
    try:
        if target:
            if not admin_token:
                raise click.ClickException("--target needs the admin token (GATEHOUSE_ADMIN_TOKEN)")
            url, user_id = target_authorization(gateway_url, admin_token, *target)
        if not user_id and not user_token:
            raise click.UsageError(
                "say who completes the session: --user-id (admin) or --user-token (gateway user)"
            )
        if user_id and not admin_token:
            raise click.ClickException("--user-id completion needs the admin token (GATEHOUSE_ADMIN_TOKEN)")
        run(
            Request(
                url or "",
                return_url,
                identity_url,
                user_id,
                None if user_id else user_token,
                admin_token,
                open_browser,
                timeout,
            )
        )
    except AuthorizeError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        sys.exit(130)


for command in (*COMMANDS, status, tools, apply):
    main.add_command(command)


if __name__ == "__main__":
    main()
