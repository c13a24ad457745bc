"""``gatehouse gateways|targets|providers|identities list|get|create|delete``.

``create`` takes the admin API's request body from ``-f FILE`` (YAML or JSON, as in
docs/admin-api.md and docs/oauth.md) or builds it from flags; secrets come from the environment or a
file, never from the command line (anyone on the machine can read it with ``ps``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from . import documents
from .api import Doc
from .context import Context, json_option, pass_context
from .output import Column, emit
from .spec import target_body

GATEWAY_COLUMNS: list[Column] = [
    ("ID", lambda g: g["gatewayId"]),
    ("NAME", lambda g: g["name"]),
    ("AUTHORIZER", lambda g: g["authorizerType"]),
    ("STATUS", lambda g: g["status"]),
    ("URL", lambda g: g["gatewayUrl"]),
]
TARGET_COLUMNS: list[Column] = [
    ("ID", lambda t: t["targetId"]),
    ("NAME", lambda t: t["name"]),
    ("STATUS", lambda t: t["status"]),
    ("TOOLS", lambda t: t["toolCount"]),
    ("ENDPOINT", lambda t: t["targetConfiguration"]["mcp"]["mcpServer"]["endpoint"]),
    ("REASONS", lambda t: t["statusReasons"]),
]
PROVIDER_COLUMNS: list[Column] = [
    ("NAME", lambda p: p["name"]),
    ("VENDOR", lambda p: p["credentialProviderVendor"]),
    ("CLIENT ID", lambda p: p["clientId"]),
    ("ISSUER", lambda p: p["authorizationServerMetadata"]["issuer"]),
    ("CALLBACK URL", lambda p: p["callbackUrl"]),
]
IDENTITY_COLUMNS: list[Column] = [
    ("NAME", lambda w: w["name"]),
    ("OWNER", lambda w: w.get("owner")),
    ("RETURN URLS", lambda w: w.get("allowedResourceOauth2ReturnUrls")),
]

file_option = click.option(
    "-f", "--file", "path", help="the request body, YAML or JSON ('-': standard input); flags are ignored"
)


def _body(path: str | None, secrets: tuple[tuple[str, ...], ...], built: dict[str, Any]) -> Doc:
    if path is None:
        return built
    body = documents.read(path)
    if not isinstance(body, dict):
        raise documents.InvalidFile(f"{path}: the body must be a mapping (a JSON object)")
    base = Path.cwd() if path == "-" else Path(path).resolve().parent
    return documents.resolve_secrets(body, secrets, path, base)  # type: ignore[no-any-return]


def _need(**flags: Any) -> None:
    missing = [f"--{name.replace('_', '-')}" for name, value in flags.items() if not value]
    if missing:
        raise click.UsageError(f"give -f FILE, or {' and '.join(missing)}")


# -- gateways -----------------------------------------------------------------------------------


@click.group()
def gateways() -> None:
    """Gateways: one MCP endpoint each, with its inbound authorizer."""


@gateways.command("list")
@json_option
@pass_context
def gateways_list(ctx: Context, as_json: bool) -> None:
    """List gateways."""
    emit(ctx.api.gateways(), as_json, GATEWAY_COLUMNS)


@gateways.command("get")
@click.argument("gateway")
@json_option
@pass_context
def gateways_get(ctx: Context, gateway: str, as_json: bool) -> None:
    """Show a gateway (by id or name)."""
    emit(ctx.api.gateway(gateway), as_json)


@gateways.command("create")
@file_option
@click.option("--name")
@click.option("--description", default="")
@click.option("--discovery-url", help="CUSTOM_JWT: the users' issuer's discovery URL")
@click.option("--audience", multiple=True, help="CUSTOM_JWT: an allowed audience (repeat)")
@click.option("--allowed-client", multiple=True, help="CUSTOM_JWT: an allowed client id (repeat)")
@click.option("--allowed-scope", multiple=True, help="CUSTOM_JWT: a required scope (repeat)")
@json_option
@pass_context
def gateways_create(
    ctx: Context,
    path: str | None,
    name: str | None,
    description: str,
    discovery_url: str | None,
    audience: tuple[str, ...],
    allowed_client: tuple[str, ...],
    allowed_scope: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a gateway (no authorizer, or CUSTOM_JWT with --discovery-url)."""
    built: Doc = {"name": name, "description": description}
    if discovery_url:
        built["authorizerType"] = "CUSTOM_JWT"
        built["authorizerConfiguration"] = {
            "customJWTAuthorizer": {
                "discoveryUrl": discovery_url,
                "allowedAudience": list(audience),
                "allowedClients": list(allowed_client),
                "allowedScopes": list(allowed_scope),
            }
        }
    if path is None:
        _need(name=name)
    emit(ctx.api.create_gateway(_body(path, documents.GATEWAY_SECRETS, built)), as_json)


@gateways.command("delete")
@click.argument("gateway")
@json_option
@pass_context
def gateways_delete(ctx: Context, gateway: str, as_json: bool) -> None:
    """Delete a gateway that has no targets (and its workload identity)."""
    emit(ctx.api.delete_gateway(ctx.api.gateway(gateway)["gatewayId"]), as_json)


# -- targets ------------------------------------------------------------------------------------


@click.group()
def targets() -> None:
    """Targets: the MCP servers behind a gateway."""


@targets.command("list")
@click.argument("gateway")
@json_option
@pass_context
def targets_list(ctx: Context, gateway: str, as_json: bool) -> None:
    """List a gateway's targets (gateway by id or name)."""
    emit(ctx.api.targets(ctx.api.gateway(gateway)["gatewayId"]), as_json, TARGET_COLUMNS)


@targets.command("get")
@click.argument("gateway")
@click.argument("target")
@json_option
@pass_context
def targets_get(ctx: Context, gateway: str, target: str, as_json: bool) -> None:
    """Show a target with its status (each by id or name)."""
    emit(ctx.api.target(ctx.api.gateway(gateway)["gatewayId"], target), as_json)


@targets.command("create")
@click.argument("gateway")
@file_option
@click.option("--name")
@click.option("--description", default="")
@click.option("--endpoint", help="the MCP server's Streamable HTTP URL")
@click.option("--tools-file", help="tools given up front: a JSON/YAML file {tools: [...]} (READY at once)")
@click.option("--provider", help="OAUTH: the credential provider's name")
@click.option(
    "--grant",
    type=click.Choice(["CLIENT_CREDENTIALS", "AUTHORIZATION_CODE"]),
    default="CLIENT_CREDENTIALS",
    show_default=True,
)
@click.option("--scope", multiple=True, help="OAUTH: a scope to ask for (repeat)")
@click.option("--return-url", help="OAUTH AUTHORIZATION_CODE: the defaultReturnUrl")
@json_option
@pass_context
def targets_create(
    ctx: Context,
    gateway: str,
    path: str | None,
    name: str | None,
    description: str,
    endpoint: str | None,
    tools_file: str | None,
    provider: str | None,
    grant: str,
    scope: tuple[str, ...],
    return_url: str | None,
    as_json: bool,
) -> None:
    """Attach an MCP server to a gateway; its tools are synchronized in the background."""
    server: Doc = {"endpoint": endpoint}
    if tools_file:
        tools = documents.read(tools_file)
        server["mcpToolSchema"] = {
            "inlinePayload": json.dumps({"tools": tools} if isinstance(tools, list) else tools)
        }
    credentials: Doc = {"credentialProviderType": "NONE"}
    if provider:
        oauth: Doc = {"providerName": provider, "scopes": list(scope), "grantType": grant}
        if return_url:
            oauth["defaultReturnUrl"] = return_url
        credentials = {
            "credentialProviderType": "OAUTH",
            "credentialProvider": {"oauthCredentialProvider": oauth},
        }
    built = {
        "name": name,
        "description": description,
        "targetConfiguration": {"mcp": {"mcpServer": server}},
        "credentialProviderConfigurations": [credentials],
    }
    if path is None:
        _need(name=name, endpoint=endpoint)
    gateway_id = ctx.api.gateway(gateway)["gatewayId"]
    emit(ctx.api.create_target(gateway_id, target_body(_body(path, (), built))), as_json)


@targets.command("delete")
@click.argument("gateway")
@click.argument("target")
@json_option
@pass_context
def targets_delete(ctx: Context, gateway: str, target: str, as_json: bool) -> None:
    """Remove a target; its tools leave tools/list at once."""
    gateway_id = ctx.api.gateway(gateway)["gatewayId"]
    emit(ctx.api.delete_target(gateway_id, ctx.api.target(gateway_id, target)["targetId"]), as_json)


# -- credential providers (identity) ------------------------------------------------------------


@click.group()
def providers() -> None:
    """OAuth credential providers: Gatehouse's clients at upstream authorization servers."""


@providers.command("list")
@json_option
@pass_context
def providers_list(ctx: Context, as_json: bool) -> None:
    """List credential providers."""
    emit(ctx.api.providers(), as_json, PROVIDER_COLUMNS)


@providers.command("get")
@click.argument("name")
@json_option
@pass_context
def providers_get(ctx: Context, name: str, as_json: bool) -> None:
    """Show a credential provider (never its secret)."""
    emit(ctx.api.provider(name), as_json)


@providers.command("create")
@file_option
@click.option("--name")
@click.option(
    "--vendor", type=click.Choice(["CustomOauth2", "GithubOauth2"]), default="CustomOauth2", show_default=True
)
@click.option("--discovery-url", help="RFC 8414 / OpenID discovery URL")
@click.option("--issuer", help="explicit endpoints instead of discovery: the issuer")
@click.option("--authorization-endpoint")
@click.option("--token-endpoint")
@click.option("--client-id")
@click.option(
    "--client-secret-env", metavar="VAR", help="read the client secret from this environment variable"
)
@click.option("--client-secret-file", metavar="PATH", help="read the client secret from this file")
@json_option
@pass_context
def providers_create(
    ctx: Context,
    path: str | None,
    name: str | None,
    vendor: str,
    discovery_url: str | None,
    issuer: str | None,
    authorization_endpoint: str | None,
    token_endpoint: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    client_secret_file: str | None,
    as_json: bool,
) -> None:
    """Create a credential provider; register the answer's callbackUrl at the provider."""
    built: Doc = {}
    if path is None:
        _need(name=name, client_id=client_id)
        if bool(client_secret_env) == bool(client_secret_file):
            raise click.UsageError("give the client secret with --client-secret-env or --client-secret-file")
        if client_secret_env:
            if client_secret_env not in os.environ:
                raise click.UsageError(f"the environment variable {client_secret_env} is not set")
            client_secret = os.environ[client_secret_env]
        else:
            client_secret = documents.secret({"file": client_secret_file}, "--client-secret-file", Path.cwd())
        config: Doc = {"clientId": client_id, "clientSecret": client_secret}
        if vendor == "CustomOauth2":
            if discovery_url:
                config["oauthDiscovery"] = {"discoveryUrl": discovery_url}
            else:
                if not (issuer and authorization_endpoint and token_endpoint):
                    raise click.UsageError(
                        "CustomOauth2 needs --discovery-url, or --issuer, --authorization-endpoint "
                        "and --token-endpoint"
                    )
                metadata = {
                    "issuer": issuer,
                    "authorizationEndpoint": authorization_endpoint,
                    "tokenEndpoint": token_endpoint,
                }
                config["oauthDiscovery"] = {"authorizationServerMetadata": metadata}
        key = "customOauth2ProviderConfig" if vendor == "CustomOauth2" else "githubOauth2ProviderConfig"
        built = {"name": name, "credentialProviderVendor": vendor, "oauth2ProviderConfigInput": {key: config}}
    body = _body(path, documents.PROVIDER_SECRETS, built)
    emit(ctx.api.identity("CreateOauth2CredentialProvider", body), as_json)


@providers.command("delete")
@click.argument("name")
@json_option
@pass_context
def providers_delete(ctx: Context, name: str, as_json: bool) -> None:
    """Delete a credential provider (the tokens its users consented to go with it)."""
    emit(ctx.api.identity("DeleteOauth2CredentialProvider", {"name": name}), as_json)


# -- workload identities (identity) -------------------------------------------------------------


@click.group()
def identities() -> None:
    """Workload identities: who asks identity for tokens, and where consents may return."""


@identities.command("list")
@json_option
@pass_context
def identities_list(ctx: Context, as_json: bool) -> None:
    """List workload identities (a gateway's own is named after the gateway id)."""
    emit(ctx.api.workload_identities(), as_json, IDENTITY_COLUMNS)


@identities.command("get")
@click.argument("name")
@json_option
@pass_context
def identities_get(ctx: Context, name: str, as_json: bool) -> None:
    """Show a workload identity."""
    emit(ctx.api.identity("GetWorkloadIdentity", {"name": name}), as_json)


@identities.command("create")
@file_option
@click.option("--name")
@click.option("--return-url", multiple=True, help="an allowed OAuth2 return URL (repeat)")
@json_option
@pass_context
def identities_create(
    ctx: Context, path: str | None, name: str | None, return_url: tuple[str, ...], as_json: bool
) -> None:
    """Create a workload identity; its clientSecret is shown this once."""
    if path is None:
        _need(name=name)
    body = _body(path, (), {"name": name, "allowedResourceOauth2ReturnUrls": list(return_url)})
    created = ctx.api.identity("CreateWorkloadIdentity", body)
    emit(created, as_json)
    if not as_json and created.get("clientSecret"):
        click.echo("\nThe clientSecret is shown this once: keep it now.", err=True)


@identities.command("delete")
@click.argument("name")
@json_option
@pass_context
def identities_delete(ctx: Context, name: str, as_json: bool) -> None:
    """Delete a workload identity."""
    emit(ctx.api.identity("DeleteWorkloadIdentity", {"name": name}), as_json)


COMMANDS = (gateways, targets, providers, identities)
