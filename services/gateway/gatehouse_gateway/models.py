"""The admin API's request bodies (camelCase on the wire, unknown fields refused) and their rules."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from gatehouse_contracts.mcp_client import SUPPORTED_PROTOCOL_VERSIONS

from .errors import BadRequest

NAME = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,99}")
NAME_RULE = "1-100 letters and digits, single hyphens between them (no '_')"
# Constraints msgspec checks and the OpenAPI document shows; the functions below give the friendlier
# messages for the rules a schema cannot say.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$")]
Description = Annotated[str, msgspec.Meta(max_length=200)]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://[^\s/?#@]+")]
ProtocolVersion = Literal["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
Scope = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S+$")]


class _Body(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


class LoginClient(_Body, frozen=True):
    """An OAuth client at the gateway's own issuer with which identity logs in the person who
    consents and checks they are the user who asked. The secret goes to identity (sealed there);
    the gateway keeps only the client id. On update an omitted secret keeps the one identity has."""

    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    client_secret: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class CustomJWTAuthorizer(_Body, frozen=True):
    discovery_url: Url
    allowed_audience: list[str] = []
    allowed_clients: list[str] = []
    allowed_scopes: list[str] = []
    login_client: LoginClient | None = None


class AuthorizerConfiguration(_Body, frozen=True):
    custom_jwt_authorizer: CustomJWTAuthorizer | None = msgspec.field(
        default=None, name="customJWTAuthorizer"
    )


class McpProtocol(_Body, frozen=True):
    supported_versions: Annotated[list[ProtocolVersion], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: list(SUPPORTED_PROTOCOL_VERSIONS)  # type: ignore[arg-type]
    )
    instructions: str | None = None
    # tool search (docs/search.md): plain strings, checked in gateways._search_config for clearer messages
    search_type: str | None = None
    tool_list_mode: str | None = None
    pinned_tools: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=300)]], msgspec.Meta(max_length=100)
    ] = []


class ProtocolConfiguration(_Body, frozen=True):
    mcp: McpProtocol = McpProtocol()


class GatewayBody(_Body, frozen=True):
    """The body of create and update (an update replaces the gateway's configuration)."""

    name: Name
    description: Description = ""
    protocol_type: Literal["MCP"] = "MCP"
    authorizer_type: Literal["NONE", "CUSTOM_JWT"] = "NONE"
    authorizer_configuration: AuthorizerConfiguration | None = None
    protocol_configuration: ProtocolConfiguration = ProtocolConfiguration()


class ToolSchema(_Body, frozen=True):
    inline_payload: str


class McpServer(_Body, frozen=True):
    endpoint: Url
    mcp_tool_schema: ToolSchema | None = None


class McpTargetConfiguration(_Body, frozen=True):
    mcp_server: McpServer


class TargetConfiguration(_Body, frozen=True):
    mcp: McpTargetConfiguration


class OauthCredentialProvider(_Body, frozen=True):
    provider_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    scopes: Annotated[list[Scope], msgspec.Meta(max_length=50)] = []
    custom_parameters: dict[str, str] = {}
    grant_type: Literal["AUTHORIZATION_CODE", "CLIENT_CREDENTIALS"] = "CLIENT_CREDENTIALS"
    default_return_url: Url | None = None


class CredentialProvider(_Body, frozen=True):
    oauth_credential_provider: OauthCredentialProvider


class NoCredentials(_Body, frozen=True, tag_field="credentialProviderType", tag="NONE"):
    pass


class OauthCredentials(_Body, frozen=True, tag_field="credentialProviderType", tag="OAUTH"):
    credential_provider: CredentialProvider


CredentialConfiguration = NoCredentials | OauthCredentials


class TargetBody(_Body, frozen=True):
    """The body of create and update (an update replaces the target's configuration)."""

    name: Name
    target_configuration: TargetConfiguration
    description: Description = ""
    credential_provider_configurations: Annotated[
        list[CredentialConfiguration], msgspec.Meta(min_length=1, max_length=1)
    ] = msgspec.field(default_factory=lambda: [NoCredentials()])


class SynchronizeBody(_Body, frozen=True):
    target_id_list: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(min_length=1, max_length=100)
    ]


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(f"{what} name {name[:120]!r} is invalid: use {NAME_RULE}")
    return name


def check_description(description: str) -> str:
    if len(description) > 200:
        raise BadRequest("description must be at most 200 characters")
    return description
