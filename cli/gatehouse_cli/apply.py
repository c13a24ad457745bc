"""``gatehouse apply -f gatehouse.yaml``: print the plan, carry it out, wait for the targets.

Exit status: 0 when every target of the file is READY; 1 on an error or when a target failed
(its reasons are printed); 3 when nothing failed but targets wait for an admin's consent (the
consent URL and the ``gatehouse authorize`` command are printed). The CLI sees only the public
admin API, so it waits by reading each target's status (every 0.25 s), not from the bus."""

from __future__ import annotations

import shutil
import sys
import time

import click

from . import plan as plan_
from . import spec as spec_
from .api import Api, Doc
from .context import Context, pass_context
from .plan import FAILED, PENDING, Action, Plan

EXIT_FAILED = 1
EXIT_PENDING = 3
POLL_SECONDS = 0.25


def _print_plan(spec: spec_.Spec, plan: Plan, source: str) -> None:
    click.echo(f"Plan for {source} (name {spec.name}):")
    for action in plan.actions:
        click.echo(action.line())
    if plan.unchanged:
        click.echo(f"  = {len(plan.unchanged)} unchanged: {', '.join(plan.unchanged)}")
    if not plan.actions:
        click.echo("No changes.")


def _execute(api: Api, plan: Plan, gateway_ids: dict[str, str]) -> list[Doc]:
    """Carry out the plan in dependency order; the targets to wait for, as the API answered."""
    started: list[Doc] = []
    for action in plan.of("create", "update"):
        if action.kind == "target":
            continue
        if action.kind == "provider":
            operation = (
                "CreateOauth2CredentialProvider"
                if action.verb == "create"
                else "UpdateOauth2CredentialProvider"
            )
            api.identity(operation, action.body or {})
        elif action.kind == "gateway" and action.verb == "create":
            gateway_ids[action.name] = api.create_gateway(action.body or {})["gatewayId"]
        elif action.kind == "gateway":
            api.update_gateway(gateway_ids[action.name], action.body or {})
        _echo_done(action)
    for action in plan.of("delete"):
        if action.kind == "target" and action.current:
            api.delete_target(action.current["gatewayId"], action.current["targetId"])
        elif action.kind == "gateway" and action.current:
            api.delete_gateway(action.current["gatewayId"])
        _echo_done(action)
    for action in plan.actions:
        if action.kind != "target" or action.verb not in ("create", "update", "sync"):
            continue
        gateway_id = gateway_ids[action.gateway or ""]
        if action.verb == "create":
            started.append(api.create_target(gateway_id, action.body or {}))
        elif action.verb == "update" and action.current:
            started.append(api.update_target(gateway_id, action.current["targetId"], action.body or {}))
        elif action.current:
            started += api.synchronize_targets(gateway_id, [action.current["targetId"]])
        _echo_done(action)
    return started


DONE = {"create": "created", "update": "updated", "delete": "deleted", "sync": "synchronizing"}


def _echo_done(action: Action) -> None:
    click.echo(f"{DONE[action.verb]} {action.kind} {action.name}")


def _settled(target: Doc, since: Doc) -> bool:
    return (
        target["status"] in ("READY", *FAILED, *PENDING)
        and target["observedGeneration"] >= since["generation"]
    )


def wait(api: Api, started: list[Doc], timeout: float, gateway_names: dict[str, str]) -> list[Doc]:
    """Each target once it settles (READY, failed or waiting for a consent), showing every change."""
    pending = {(t["gatewayId"], t["targetId"]): t for t in started}
    shown = {key: t["status"] for key, t in pending.items()}
    names = {key: f"{gateway_names.get(key[0], key[0])}/{t['name']}" for key, t in pending.items()}
    done: list[Doc] = []
    deadline = time.monotonic() + timeout
    began = time.monotonic()
    live = sys.stdout.isatty()
    while pending:
        for key, since in list(pending.items()):
            target = api.target(*key)
            if target["status"] != shown[key]:
                if live:
                    click.echo("\r\033[K", nl=False)
                click.echo(
                    f"  {names[key]}: {shown[key]} -> {target['status']} ({time.monotonic() - began:.1f}s)"
                )
                shown[key] = target["status"]
            if _settled(target, since):
                done.append(target)
                del pending[key]
        if not pending:
            break
        if time.monotonic() > deadline:
            stuck = ", ".join(f"{names[k]} ({shown[k]})" for k in pending)
            raise click.ClickException(f"targets not settled after {timeout:g}s: {stuck}")
        if live:
            states = ", ".join(f"{names[k]} {shown[k]}" for k in pending)
            line = f"waiting {time.monotonic() - began:.0f}s: {states}"
            click.echo(f"\r\033[K{line[: shutil.get_terminal_size().columns - 1]}", nl=False)
        time.sleep(POLL_SECONDS)
    if live:
        click.echo("\r\033[K", nl=False)
    return done


def _report(targets: list[Doc]) -> int:
    """Print where the file's targets ended; the exit status that says so."""
    failed = [t for t in targets if t["status"] in FAILED]
    waiting = [t for t in targets if t["status"] in PENDING]
    for t in failed:
        reasons = "; ".join(t["statusReasons"]) or "no reason given"
        click.echo(
            f"FAILED: target {t['name']} of gateway {t['gatewayId']} is {t['status']}: {reasons}", err=True
        )
    for t in waiting:
        oauth2 = (t.get("authorizationData") or {}).get("oauth2") or {}
        click.echo(
            f"CONSENT NEEDED: target {t['name']} of gateway {t['gatewayId']} is {t['status']}: open\n"
            f"  {oauth2.get('authorizationUrl', '(no URL)')}\n"
            f"  or run: gatehouse authorize --target {t['gatewayId']} {t['targetId']} "
            "--return-url <its defaultReturnUrl>",
            err=True,
        )
    if failed:
        return EXIT_FAILED
    if waiting:
        return EXIT_PENDING
    ready = sum(1 for t in targets if t["status"] == "READY")
    click.echo(f"Applied: {ready} target(s) READY.")
    return 0


@click.command()
@click.option(
    "-f", "--file", "path", required=True, help="the declarative file (YAML or JSON; '-': standard input)"
)
@click.option("--dry-run", is_flag=True, help="print the plan and change nothing")
@click.option(
    "--prune", is_flag=True, help="also delete what the file no longer names (only what it manages)"
)
@click.option(
    "--update-secrets", is_flag=True, help="send the secrets again (they cannot be read back to compare)"
)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="seconds to wait for the targets"
)
@pass_context
def apply(ctx: Context, path: str, dry_run: bool, prune: bool, update_secrets: bool, timeout: float) -> None:
    """Make the APIs hold what a gatehouse.yaml says: create, update, optionally prune."""
    spec = spec_.load(path)
    api = ctx.api
    gateways = api.gateways()
    targets = {g["gatewayId"]: api.targets(g["gatewayId"]) for g in gateways}
    try:
        plan = plan_.make(
            spec, api.providers(), gateways, targets, prune=prune, update_secrets=update_secrets
        )
    except plan_.Conflict as exc:
        raise click.ClickException(str(exc)) from None
    _print_plan(spec, plan, path)
    if dry_run:
        return
    gateway_ids = {g["name"]: g["gatewayId"] for g in gateways}
    started = _execute(api, plan, gateway_ids)
    names = {gid: name for name, gid in gateway_ids.items()}
    settled = wait(api, started, timeout, names) if started else []
    # the file's targets that were left alone count too: the file asks for them READY
    touched = {(t["gatewayId"], t["targetId"]) for t in settled}
    listed = {(g.body["name"], t["name"]) for g in spec.gateways for t in g.targets}
    for gateway_id, current in targets.items():
        settled += [
            t
            for t in current
            if (names.get(gateway_id), t["name"]) in listed and (gateway_id, t["targetId"]) not in touched
        ]
    sys.exit(_report(settled))
