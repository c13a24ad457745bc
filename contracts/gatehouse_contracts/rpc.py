"""Identity's RPC messages (NATS request/reply on ``gatehouse.rpc.identity.<Operation>.<caller>``).

Requests are named in the imperative; the operation name is the class name. A reply is either
the operation's reply Struct or ``RpcError``; both are tagged so one decoder tells them apart.
The same Structs are the identity HTTP API's bodies (camelCase on the wire).
"""

from __future__ import annotations

from typing import Literal

import msgspec


class RpcError(msgspec.Struct, frozen=True, tag=True, rename="camel"):
    """A refusal: ``code`` is one of our error codes (``NotFound``, ``Conflict``, ``Forbidden`` ...)."""

    code: str
    message: str


class _Request(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A request: decoded as the one type its subject (or route) names, so it carries no tag."""


class _Reply(msgspec.Struct, frozen=True, kw_only=True, tag=True, rename="camel"):
    """A reply: tagged, so one decoder tells it from ``RpcError``."""


# --- workload identities --------------------------------------------------------------------


class LoginClient(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """An OAuth client at the workload's own JWT issuer: identity logs the consenting person in with
    it and checks they are the user who started the session. The secret travels only in create and
    update requests (empty there: keep the stored one for the same client id); replies never carry it."""

    client_id: str
    client_secret: str = ""


class JwtAuthorizer(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Which user JWTs a workload trusts (a gateway registers its inbound authorizer here)."""

    discovery_url: str
    allowed_audience: list[str] = []
    allowed_clients: list[str] = []
    allowed_scopes: list[str] = []
    login_client: LoginClient | None = None


class WorkloadIdentity(_Reply, frozen=True):
    name: str
    allowed_resource_oauth2_return_urls: list[str] = []
    jwt_authorizer: JwtAuthorizer | None = None
    owner: str = "admin"  # "gateway" for a gateway's own workload identity
    workload_identity_arn: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    client_secret: str | None = None
    """Only in the answer that made it (CreateWorkloadIdentity or RotateWorkloadIdentitySecret, to an
    admin): the workload's own credential for identity's HTTP token endpoints. Kept hashed; never
    shown again."""


class CreateWorkloadIdentity(_Request, frozen=True):
    name: str
    allowed_resource_oauth2_return_urls: list[str] = []
    jwt_authorizer: JwtAuthorizer | None = None


class GetWorkloadIdentity(_Request, frozen=True):
    name: str


class UpdateWorkloadIdentity(_Request, frozen=True):
    name: str
    allowed_resource_oauth2_return_urls: list[str] = []
    jwt_authorizer: JwtAuthorizer | None = None


class DeleteWorkloadIdentity(_Request, frozen=True):
    name: str


class RotateWorkloadIdentitySecret(_Request, frozen=True):
    """A new client secret for an admin's workload identity; the old one stops working at once."""

    name: str


class ListWorkloadIdentities(_Request, frozen=True):
    max_results: int = 100
    next_token: str | None = None


class WorkloadIdentityList(_Reply, frozen=True):
    items: list[WorkloadIdentity]
    next_token: str | None = None


class Deleted(_Reply, frozen=True):
    name: str


# --- credential providers (admin, HTTP) -------------------------------------------------------


class AuthorizationServerMetadata(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    token_endpoint_auth_methods: list[str] = []


class OauthDiscovery(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Exactly one of ``discovery_url`` (RFC 8414 / OIDC) or explicit metadata."""

    discovery_url: str | None = None
    authorization_server_metadata: AuthorizationServerMetadata | None = None


class CustomOauth2ProviderConfig(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    oauth_discovery: OauthDiscovery
    client_id: str
    client_secret: str


class GithubOauth2ProviderConfig(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    client_id: str
    client_secret: str


class Oauth2ProviderConfigInput(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    custom_oauth2_provider_config: CustomOauth2ProviderConfig | None = None
    github_oauth2_provider_config: GithubOauth2ProviderConfig | None = None


class CreateOauth2CredentialProvider(_Request, frozen=True):
    name: str
    credential_provider_vendor: Literal["CustomOauth2", "GithubOauth2"]
    oauth2_provider_config_input: Oauth2ProviderConfigInput


class UpdateOauth2CredentialProvider(_Request, frozen=True):
    name: str
    credential_provider_vendor: Literal["CustomOauth2", "GithubOauth2"]
    oauth2_provider_config_input: Oauth2ProviderConfigInput


class GetOauth2CredentialProvider(_Request, frozen=True):
    name: str


class DeleteOauth2CredentialProvider(_Request, frozen=True):
    name: str


class ListOauth2CredentialProviders(_Request, frozen=True):
    max_results: int = 100
    next_token: str | None = None


class Oauth2CredentialProvider(_Reply, frozen=True):
    """A provider as the API shows it: never the client secret."""

    name: str
    credential_provider_vendor: str
    callback_url: str
    client_id: str
    authorization_server_metadata: AuthorizationServerMetadata
    credential_provider_arn: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


class Oauth2CredentialProviderList(_Reply, frozen=True):
    items: list[Oauth2CredentialProvider]
    next_token: str | None = None


# --- workload access tokens -----------------------------------------------------------------


class GetWorkloadAccessToken(_Request, frozen=True):
    workload_name: str


class GetWorkloadAccessTokenForJWT(_Request, frozen=True):
    workload_name: str
    user_token: str


class GetWorkloadAccessTokenForUserId(_Request, frozen=True):
    workload_name: str
    user_id: str


class WorkloadAccessToken(_Reply, frozen=True):
    workload_access_token: str


# --- resource tokens ------------------------------------------------------------------------


class GetResourceOauth2Token(_Request, frozen=True):
    workload_identity_token: str
    resource_credential_provider_name: str
    scopes: list[str] = []
    oauth2_flow: Literal["USER_FEDERATION", "M2M"] = "USER_FEDERATION"
    session_uri: str | None = None
    resource_oauth2_return_url: str | None = None
    force_authentication: bool = False
    custom_parameters: dict[str, str] = {}
    resources: list[str] = []


class ResourceOauth2Token(_Reply, frozen=True):
    """Either ``access_token`` or a pending authorization (``authorization_url`` + ``session_uri``)."""

    access_token: str | None = None
    authorization_url: str | None = None
    session_uri: str | None = None
    session_status: Literal["IN_PROGRESS", "FAILED"] | None = None
    session_expires_at: float | None = None
    expires_at: float | None = None  # when to stop using access_token (a margin before it expires)


class UserIdentifier(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    user_token: str | None = None
    user_id: str | None = None


class CompleteResourceTokenAuth(_Request, frozen=True):
    user_identifier: UserIdentifier
    session_uri: str
    """The completion handle the return URL received as ``session_id`` (never the request_uri)."""
    request_uri: str | None = None
    """Gatehouse's addition: the session the caller started (the ``request_uri`` of its authorization
    URL); a handle of any other session is refused. ``gatehouse authorize`` always sends it."""


class Completed(_Reply, frozen=True):
    pass


# --- a user's own connections (the vault entries of one user, never their tokens) -------------


class ListUserConnections(_Request, frozen=True):
    """The caller's own connections at a workload; ``user_token`` (a JWT the workload's
    ``jwtAuthorizer`` accepts) both authenticates and names the user."""

    workload_name: str
    user_token: str


class UserConnection(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    provider_name: str
    scopes: list[str]
    resources: list[str]
    authorized_at: float
    """When the user consented (the last consent, for a reconnected entry)."""
    expires_at: float | None = None
    """When the stored access token expires (identity refreshes it on use when it can)."""


class UserConnections(_Reply, frozen=True):
    user_id: str
    connections: list[UserConnection]


class DeleteUserConnection(_Request, frozen=True):
    """Disconnect: drop the caller's own token for (provider, scopes, resources), revoking it at the
    provider first when it offers RFC 7009 revocation."""

    workload_name: str
    user_token: str
    provider_name: str
    scopes: list[str] = []
    resources: list[str] = []


class UserConnectionDeleted(_Reply, frozen=True):
    revoked_at_provider: bool
    """The provider confirmed the revocation (False: it has no revocation endpoint, or refused)."""


# Operation name -> (request, reply); the RPC subject is rpc_subject(name).
OPERATIONS: dict[str, tuple[type[_Request], type[_Reply]]] = {
    cls.__name__: (cls, reply)
    for cls, reply in (
        (CreateWorkloadIdentity, WorkloadIdentity),
        (GetWorkloadIdentity, WorkloadIdentity),
        (UpdateWorkloadIdentity, WorkloadIdentity),
        (DeleteWorkloadIdentity, Deleted),
        (RotateWorkloadIdentitySecret, WorkloadIdentity),
        (ListWorkloadIdentities, WorkloadIdentityList),
        (GetWorkloadAccessToken, WorkloadAccessToken),
        (GetWorkloadAccessTokenForJWT, WorkloadAccessToken),
        (GetWorkloadAccessTokenForUserId, WorkloadAccessToken),
        (GetResourceOauth2Token, ResourceOauth2Token),
        (CompleteResourceTokenAuth, Completed),
        (CreateOauth2CredentialProvider, Oauth2CredentialProvider),
        (GetOauth2CredentialProvider, Oauth2CredentialProvider),
        (UpdateOauth2CredentialProvider, Oauth2CredentialProvider),
        (DeleteOauth2CredentialProvider, Deleted),
        (ListOauth2CredentialProviders, Oauth2CredentialProviderList),
        (ListUserConnections, UserConnections),
        (DeleteUserConnection, UserConnectionDeleted),
    )
}

_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)
