"""The admin API's request bodies (camelCase on the wire, unknown fields refused) and their rules."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from gatehouse_contracts.mcp_client import SUPPORTED_PROTOCOL_VERSIONS

from .errors import BadRequest

NAME = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,99}")
NAME_RULE = "1-100 letters and digits, single hyphens between them (no '_')"


class _Body(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


class CustomJWTAuthorizer(_Body, frozen=True):
    discovery_url: str
    allowed_audience: list[str] = []
    allowed_clients: list[str] = []
    allowed_scopes: list[str] = []


class AuthorizerConfiguration(_Body, frozen=True):
    custom_jwt_authorizer: CustomJWTAuthorizer | None = msgspec.field(
        default=None, name="customJWTAuthorizer"
    )


class McpProtocol(_Body, frozen=True):
    supported_versions: list[str] = msgspec.field(default_factory=lambda: list(SUPPORTED_PROTOCOL_VERSIONS))
    instructions: str | None = None


class ProtocolConfiguration(_Body, frozen=True):
    mcp: McpProtocol = McpProtocol()


class GatewayBody(_Body, frozen=True):
    """The body of create and update (an update replaces the gateway's configuration)."""

    name: str
    description: str = ""
    protocol_type: Literal["MCP"] = "MCP"
    authorizer_type: Literal["NONE", "CUSTOM_JWT"] = "NONE"
    authorizer_configuration: AuthorizerConfiguration | None = None
    protocol_configuration: ProtocolConfiguration = ProtocolConfiguration()


class ToolSchema(_Body, frozen=True):
    inline_payload: str


class McpServer(_Body, frozen=True):
    endpoint: str
    mcp_tool_schema: ToolSchema | None = None


class McpTargetConfiguration(_Body, frozen=True):
    mcp_server: McpServer


class TargetConfiguration(_Body, frozen=True):
    mcp: McpTargetConfiguration


class OauthCredentialProvider(_Body, frozen=True):
    provider_name: str
    scopes: list[str] = []
    custom_parameters: dict[str, str] = {}
    grant_type: Literal["AUTHORIZATION_CODE", "CLIENT_CREDENTIALS"] = "CLIENT_CREDENTIALS"
    default_return_url: str | None = None


class CredentialProvider(_Body, frozen=True):
    oauth_credential_provider: OauthCredentialProvider


class NoCredentials(_Body, frozen=True, tag_field="credentialProviderType", tag="NONE"):
    pass


class OauthCredentials(_Body, frozen=True, tag_field="credentialProviderType", tag="OAUTH"):
    credential_provider: CredentialProvider


CredentialConfiguration = NoCredentials | OauthCredentials


class TargetBody(_Body, frozen=True):
    """The body of create and update (an update replaces the target's configuration)."""

    name: str
    target_configuration: TargetConfiguration
    description: str = ""
    credential_provider_configurations: list[CredentialConfiguration] = msgspec.field(
        default_factory=lambda: [NoCredentials()]
    )


class SynchronizeBody(_Body, frozen=True):
    target_id_list: list[str]


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(f"{what} name {name[:120]!r} is invalid: use {NAME_RULE}")
    return name


def check_description(description: str) -> str:
    if len(description) > 200:
        raise BadRequest("description must be at most 200 characters")
    return description
