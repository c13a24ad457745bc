"""How gateway and sync-worker authenticate to a target whose credentials are an OAuth client
(``CLIENT_CREDENTIALS``): two identity RPCs, then a bearer header. The token is the gateway's
workload's, for the target endpoint as RFC 8707 resource; identity caches it until shortly before
it expires, so asking again is cheap.
"""

from __future__ import annotations

from typing import Any

from . import rpc
from .bus import IdentityClient


def oauth_provider(credentials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``oauthCredentialProvider`` of a target's stored credential configuration, if it has one."""
    config = credentials[0] if credentials else {}
    if config.get("credentialProviderType") != "OAUTH":
        return None
    provider: dict[str, Any] = config["credentialProvider"]["oauthCredentialProvider"]
    return provider


async def m2m_headers(
    identity: IdentityClient, workload: str, provider: dict[str, Any], endpoint: str
) -> dict[str, str]:
    workload_token = await identity.call(
        rpc.GetWorkloadAccessToken(workload_name=workload), rpc.WorkloadAccessToken
    )
    answer = await identity.call(
        rpc.GetResourceOauth2Token(
            workload_identity_token=workload_token.workload_access_token,
            resource_credential_provider_name=provider["providerName"],
            scopes=provider.get("scopes", []),
            oauth2_flow="M2M",
            resources=[endpoint],
        ),
        rpc.ResourceOauth2Token,
    )
    return {"Authorization": f"Bearer {answer.access_token}"}
